"""A real WordPress for the tests: Debian's ``wordpress`` on MariaDB, served by ``php -S`` on 127.0.0.1.

`.ci/run` installs the Debian packages (``wordpress``, ``php-cli``, ``php-mysql``,
``mariadb-server``). Everything runs under one throwaway directory:

- MariaDB with its data there, listening on a Unix socket only (no TCP port to collide on);
- a docroot of copies of ``/usr/share/wordpress``'s top-level scripts and symlinks to its
  directories, with its own ``wp-config.php`` (Debian's
  looks up ``/etc/wordpress/config-<host>.php``, which a test must not write) and its own
  ``wp-content`` for uploads;
- ``wp_install`` run once by ``php`` (``install.php`` here), which also turns on pretty
  permalinks (the REST API under ``/wp-json``), creates a category and a tag, and
  application passwords for the admin and for a contributor (who may not publish);
- ``php -S`` with a router that sends every path that is not a file to ``index.php``.

``WP_ENVIRONMENT_TYPE=local`` lets application passwords work over plain http, as WordPress
allows on a local site. Start-up takes a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port, stop_process

WORDPRESS = Path("/usr/share/wordpress")
START_TIMEOUT = 60.0
PACKAGES = "Debian packages wordpress, php-cli, php-mysql and mariadb-server"

CONFIG = """<?php
define('DB_NAME', 'wordpress');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:{socket}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
define('ABSPATH', '{root}/');
define('WP_CONTENT_DIR', '{root}/wp-content');
define('WP_ENVIRONMENT_TYPE', 'local');
define('WP_AUTO_UPDATE_CORE', false);
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
$table_prefix = 'wp_';
require_once ABSPATH . 'wp-settings.php';
"""

ROUTER = """<?php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path !== '/' && file_exists(__DIR__ . $path) && !is_dir(__DIR__ . $path)) {
    return false;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
require __DIR__ . '/index.php';
"""

INSTALL = """<?php
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = '127.0.0.1';
require __DIR__ . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$url = $argv[1];
wp_install('socialgate peer', 'admin', 'admin@example.com', true, '', 'admin-login-password');
update_option('siteurl', $url);
update_option('home', $url);
update_option('permalink_structure', '/%postname%/');
$category = wp_insert_term('Releases', 'category');
$tag = wp_insert_term('socialgate', 'post_tag');
$user = get_user_by('login', 'admin');
[$password] = WP_Application_Passwords::create_new_application_password($user->ID, ['name' => 'socialgate tests']);
$contributor = wp_insert_user(['user_login' => 'contributor', 'user_pass' => 'contributor-login-password', 'role' => 'contributor']);
[$contributor_password] = WP_Application_Passwords::create_new_application_password($contributor, ['name' => 'socialgate tests']);
echo json_encode([
    'password' => $password, 'user_id' => $user->ID, 'category' => $category['term_id'], 'tag' => $tag['term_id'],
    'contributor_password' => $contributor_password,
]);
"""


class WordPressUnavailable(Exception):
    """The Debian packages are not installed: the peer cannot run on this machine."""


@dataclass(frozen=True)
class RunningWordPress:
    url: str  # http://127.0.0.1:<port>
    username: str
    application_password: str
    user_id: int
    category_id: int
    tag_id: int
    contributor_password: str  # of ``contributor``, who may write drafts but not publish


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
        if found:
            return found
    raise WordPressUnavailable(f"{names[0]} is not installed ({PACKAGES})")


def _docroot(root: Path, socket: Path) -> None:
    """Debian's WordPress with this run's own config and wp-content.

    The top-level scripts are copied, because PHP resolves symlinks in ``__FILE__`` and
    ``wp-load.php`` finds ``wp-config.php`` next to itself; the directories are symlinked.
    """
    for entry in WORDPRESS.iterdir():
        if entry.name in ("wp-config.php", "wp-content", ".htaccess"):
            continue
        if entry.is_dir():
            (root / entry.name).symlink_to(entry)
        else:
            shutil.copyfile(entry, root / entry.name)
    content = root / "wp-content"
    (content / "uploads").mkdir(parents=True)
    for shared in ("plugins", "themes"):
        (content / shared).symlink_to(WORDPRESS / "wp-content" / shared)
    (root / "wp-config.php").write_text(CONFIG.replace("{socket}", str(socket)).replace("{root}", str(root)))
    (root / "router.php").write_text(ROUTER)
    (root / "install.php").write_text(INSTALL)


def _wait_for(check, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.1)


def _mysql_ready(client: str, socket: Path) -> bool:
    ping = [client, "--no-defaults", f"--socket={socket}", "-uroot", "-e", "CREATE DATABASE IF NOT EXISTS wordpress"]
    return subprocess.run(ping, capture_output=True, timeout=10).returncode == 0


def _http_ready(url: str) -> bool:
    try:
        return httpx.get(url + "/wp-json/", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_wordpress() -> Iterator[RunningWordPress]:
    """A fresh WordPress on a free loopback port, with an admin's application password; stopped afterwards."""
    if not (WORDPRESS / "wp-settings.php").exists():
        raise WordPressUnavailable(f"/usr/share/wordpress is missing ({PACKAGES})")
    php, mariadbd = _binary("php"), _binary("mariadbd", "mysqld")
    install_db, client = _binary("mariadb-install-db", "mysql_install_db"), _binary("mariadb", "mysql")
    base = Path(tempfile.mkdtemp(prefix="socialgate-wp-"))
    data, socket, root = base / "db", base / "mysql.sock", base / "site"
    root.mkdir()
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal", "--skip-test-db", *user],
        check=True, capture_output=True, timeout=120,
    )
    db_log, web_log = base / "mariadb.log", base / "php.log"
    database = subprocess.Popen(
        [mariadbd, "--no-defaults", f"--datadir={data}", f"--socket={socket}", "--skip-networking", f"--pid-file={base / 'mariadb.pid'}",
         "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", *user],
        stdout=db_log.open("w"), stderr=subprocess.STDOUT,
    )
    web = None
    try:
        _wait_for(lambda: _mysql_ready(client, socket), "MariaDB", database, db_log)
        _docroot(root, socket)
        url = f"http://127.0.0.1:{free_port()}"
        installed = subprocess.run([php, str(root / "install.php"), url], cwd=root, capture_output=True, text=True, timeout=120)
        if installed.returncode != 0 or not installed.stdout.strip().startswith("{"):
            raise RuntimeError(f"installing WordPress failed:\n{installed.stdout[-2000:]}\n{installed.stderr[-2000:]}")
        setup = json.loads(installed.stdout.strip().splitlines()[-1])
        port = url.rsplit(":", 1)[1]
        web = subprocess.Popen(
            [php, "-S", f"127.0.0.1:{port}", "-t", str(root), str(root / "router.php")], cwd=root,
            stdout=web_log.open("w"), stderr=subprocess.STDOUT,
        )
        _wait_for(lambda: _http_ready(url), "php -S", web, web_log)
        yield RunningWordPress(
            url=url, username="admin", application_password=setup["password"], user_id=int(setup["user_id"]),
            category_id=int(setup["category"]), tag_id=int(setup["tag"]), contributor_password=setup["contributor_password"],
        )
    finally:
        if web is not None:
            stop_process(web)
        stop_process(database, timeout=20)
        shutil.rmtree(base, ignore_errors=True)
