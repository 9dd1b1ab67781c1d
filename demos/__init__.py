"""The demos (scripts: ``python demos/render.py``, or ``taichi-softras demo render`` when installed,
where this folder is the package ``taichi_softras_demos``). Each script imports its helpers as the
top-level ``demo_kit``: the script's own folder is first on ``sys.path`` when it runs."""
