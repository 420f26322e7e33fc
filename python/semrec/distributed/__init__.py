"""Scale-out on Dask: encode, profile, recommend, evaluate and train ALS across a cluster.

semrec supplies the partition functions and the C++ kernels; ``dask.distributed`` does the
scheduling, data movement and fault handling. Every function takes the running
``distributed.Client`` (the current one by default) and user-partitioned interactions: a Dask
DataFrame with one row per interaction (columns ``user``, ``item``, ``weight`` by default;
:func:`interactions_frame` builds one from a CSR matrix).

Threads: each task runs the semrec kernels with ``max(1, cores_on_host // dask_threads_on_host)``
threads, where ``dask_threads_on_host`` is the sum of ``nthreads`` of the workers on that host
(``workers_on_host * threads_per_worker`` for a uniform cluster), so Dask threads times semrec
threads never exceed the cores. ``num_threads=`` overrides it. The count holds for the task's
thread only: the process-wide :func:`semrec.set_num_threads` setting is never changed, which
matters on an in-process cluster (``Client(processes=False)``), whose tasks run in the client's
own process.

Needs the optional extra: ``pip install "semrec[dask]"``. ``import semrec`` never imports Dask.
"""

from __future__ import annotations

try:
    import dask
    import dask.array
    import dask.dataframe  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f'semrec.distributed needs Dask ({exc}); install it with: pip install "semrec[dask]"'
    ) from exc

from semrec.distributed._blocks import interactions_frame
from semrec.distributed.als import fit_als
from semrec.distributed.encode import encode
from semrec.distributed.evaluation import evaluate
from semrec.distributed.interest import interest_profiles
from semrec.distributed.recommend import recommend

__all__ = [
    "encode",
    "evaluate",
    "fit_als",
    "interactions_frame",
    "interest_profiles",
    "recommend",
]
