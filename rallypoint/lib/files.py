"""The data directory is for the service's own user only.

It holds the secret key, the key ring, the TLS and VAPID keys, the demo sign-in details, the SQLite
database (with its ``-wal`` and ``-shm`` files) and the e-mail outbox, whose messages carry
set-password links: nothing in it is for other users of the machine.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: Files this process creates get 0600, directories 0700, whoever creates them (SQLite, Django's file
#: e-mail backend, ``mkdir``) and whatever umask the process was started with.
PRIVATE_UMASK = 0o077


def make_private(directory: Path) -> None:
    """Create ``directory`` if needed and take the group's and others' permissions from it and from
    everything in it that this user owns (what an earlier version or another umask left readable).

    Owner bits stay as they are. Symbolic links are neither changed nor followed, and an entry
    owned by someone else (a certificate the administrator put there, say) is left alone.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = os.geteuid()
    _restrict(os.lstat(directory), str(directory), uid)
    _restrict_tree(str(directory), uid)


def _restrict_tree(directory: str, uid: int) -> None:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return  # removed meanwhile by another process
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        _restrict(info, entry.path, uid)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
            _restrict_tree(entry.path, uid)


def _restrict(info: os.stat_result, path: str, uid: int) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == uid and not stat.S_ISLNK(info.st_mode) and mode & 0o077:
        os.chmod(path, mode & 0o700)
