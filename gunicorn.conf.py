"""Gunicorn settings read from the working directory: start each worker's inbox as soon as it boots,
so events left over from a crash are taken up again without waiting for the next request."""


def post_worker_init(worker) -> None:
    deployment = getattr(worker.wsgi, "extensions", {}).get("bots")
    if deployment is not None:
        deployment.start()
