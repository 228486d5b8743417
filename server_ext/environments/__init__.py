"""Environments that persist: what a user installs, and project kernels.

Everything here lives on the user's home volume and never touches the image:

* ``user_site``: packages installed with ``pip install`` (``--user`` by the image's pip
  configuration) in the user base (``PYTHONUSERBASE``, ``~/.local``): where they are, which are
  installed, and what a reset removes;
* ``projects``: the pure part of project kernels (a folder with a ``requirements.txt`` or an
  ``environment.yml``): paths, slugs, kernel names, states, kernelspecs and build plans;
* ``builder``: builds a project's environment from its plan into ``~/.mlteams/envs/<slug>/``,
  keeps the last working one when a build fails, and registers the kernelspec;
* ``cli``: the ``mlteams-env`` command.

Only the standard library (and the contract) is imported here; the server extension's handlers
(``server_ext.server.environment_handlers``) are a thin layer over it.
"""
