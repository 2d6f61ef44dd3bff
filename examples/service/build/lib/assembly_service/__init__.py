"""Reference service for podcast-assembly: durable assembly jobs behind a FastAPI app.

* ``store``: the job store interface (:class:`~assembly_service.store.JobStore`) and its
  SQLite implementation (:class:`~assembly_service.sqlite_store.SQLiteJobStore`).
* ``jobs``: :func:`~assembly_service.jobs.run_leased_job`, the job function. It needs a store
  and a lease, nothing from the web app, so a separate worker process (or a Celery task) runs
  it the same way.
* ``worker``: the worker pool (threads in the app process) and the standalone worker command.
* ``app``: the FastAPI app (``create_app``).

Run it with ``python -m assembly_service serve`` (see ``docs/service.md``).
"""

__version__ = "0.1.0"
