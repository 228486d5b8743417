# Loads the jupyterhub-mlteams kernel hook (the IPython extension `server_ext.kernel.hook`) into
# IPython kernels. The package installs this file as
# `{sys.prefix}/etc/ipython/startup/50-mlteams-kernel-hook.py`; IPython runs every startup file of
# that folder (and of /usr/local/etc/ipython/startup, /etc/ipython/startup and the profile's
# startup folder) when a shell starts, so it sits beside the image's or an admin's own startup
# files and leaves every ipython_kernel_config file, and its `extensions` and `extra_extensions`,
# to them. Terminal IPython is left alone: only a kernel's shell has a `kernel`.
#
# Startup files run in the user's namespace: the one name defined here is deleted again.


def _mlteams_load_kernel_hook() -> None:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    try:
        shell.extension_manager.load_extension("server_ext.kernel.hook")
    except Exception:
        # IPython stops at the first startup file that raises: let the ones after this one run
        shell.showtraceback()


_mlteams_load_kernel_hook()
del _mlteams_load_kernel_hook
