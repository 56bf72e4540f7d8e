"""Keep numba's on-disk cache honest across edits of the modules a kernel module inlines.

numba (``@njit(cache=True)``) keys a cached function on the source file that defines it (its
modification time and size). A kernel module that inlines jitted functions or constant tables
from another module (:mod:`devices.kernels.online` calls the per-device functions of
:mod:`devices.kernels.numba_cpu`, which reads the ziggurat tables of :mod:`devices._rng`) would
therefore keep running its old compiled code after only that other module changed: silently
different numbers. :func:`drop_stale_cache` closes the gap: each kernel module calls it at
import, before its functions are compiled or loaded, with the files it depends on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["drop_stale_cache"]


def drop_stale_cache(module_file: str, *dependencies: str) -> bool:
    """Delete the numba cache files of ``module_file`` when a dependency's source changed.

    A stamp (SHA-256 of the dependencies' bytes) is kept beside the cache files in the module's
    ``__pycache__`` folder (where numba caches by default); when it differs from the current
    sources, the module's ``*.nbi`` / ``*.nbc`` files are deleted so numba recompiles. A folder
    that cannot be written (a read-only install) is left alone: nothing there can go stale
    without the package files changing too.

    Parameters
    ----------
    module_file : str
        ``__file__`` of the kernel module.
    *dependencies : str
        Source files whose jitted functions or constants the module's kernels compile in.

    Returns
    -------
    bool
        Whether stale cache files were found and deleted.
    """
    digest = hashlib.sha256()
    for dep in dependencies:
        try:
            digest.update(Path(dep).read_bytes())
        except OSError:
            return False
    stamp = digest.hexdigest()
    module = Path(module_file)
    cache_dir = module.parent / "__pycache__"
    stamp_file = cache_dir / f"{module.stem}.deps"
    try:
        if stamp_file.read_text() == stamp:
            return False
    except OSError:
        pass
    stale = [*cache_dir.glob(f"{module.stem}.*.nbi"), *cache_dir.glob(f"{module.stem}.*.nbc")]
    try:
        for f in stale:
            f.unlink(missing_ok=True)
        cache_dir.mkdir(exist_ok=True)
        stamp_file.write_text(stamp)
    except OSError:
        return False
    return bool(stale)
