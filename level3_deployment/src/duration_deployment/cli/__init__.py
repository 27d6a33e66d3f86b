"""The command lines of level 3, one module each (the shape of SeldonIO/MLServer's ``cli/``).

- :mod:`~duration_deployment.cli.router`: ``duration-router``, the A/B router under uvicorn.
- :mod:`~duration_deployment.cli.deploy`: ``duration-deploy``, one verb per control call.
- :mod:`~duration_deployment.cli.render`: the text a workshop reads.
- :mod:`~duration_deployment.cli.pipeline`: ``duration-deploy pipeline``, level 2's pipeline
  then the one call.

The HTTP client they share is :mod:`duration_deployment.client`.
"""
