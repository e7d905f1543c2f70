#!/usr/bin/env bash
# The one test command of guard: ./scripts/test.sh
#
# On a fresh Debian machine it brings up what the tests need, then runs
# `go vet ./...` and the race-enabled tests:
#   - installs PostgreSQL, MariaDB and gcc (pg_query_go is cgo) from Debian's
#     packages when they are missing;
#   - starts PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) when they
#     are installed but down, and waits until they accept connections;
#   - lets user postgres log in over 127.0.0.1 without a password (trust) and
#     root log in to MariaDB over 127.0.0.1 with an empty password, changing the
#     server's configuration only when such a login fails;
#   - creates the database `test` in both when it is missing.
# Every step checks before it acts, so a second run only pays for the tests.
#
# Environment:
#   GUARD_TEST_PG_DSN      run the tests against this PostgreSQL; the local one is left alone
#   GUARD_TEST_MYSQL_DSN   run the tests against this MariaDB/MySQL; the local one is left alone
#   GUARD_TEST_WAIT        seconds to wait for a database to accept connections (default 60)
#   GUARD_TEST_SETUP_ONLY  when 1, prepare the services and stop before go vet / go test
# Arguments, when given, replace ./... as the packages (and flags) for go test,
# e.g. ./scripts/test.sh -run Conformance .
set -euo pipefail
cd "$(dirname "$0")/.."

PG_PORT=5432
MY_PORT=3306
WAIT=${GUARD_TEST_WAIT:-60}

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() {
	printf 'test.sh: error: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# priv runs a command as root: directly when we are root, else through sudo
# without a prompt (CI has no stdin).
priv() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif have sudo; then
		sudo -n "$@"
	else
		die "need root to run: $* (run this script as root, or install sudo)"
	fi
}

# as_user runs a command as another OS user, for logins that trust the OS
# account (PostgreSQL peer auth for postgres).
as_user() {
	local user=$1
	shift
	if [ "$(id -un)" = "$user" ]; then
		"$@"
	elif [ "$(id -u)" -eq 0 ] && have runuser; then
		runuser -u "$user" -- "$@"
	elif [ "$(id -u)" -eq 0 ]; then
		su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
	elif have sudo; then
		sudo -n -u "$user" -- "$@"
	else
		die "need root or sudo to run as $user: $*"
	fi
}

# wait_for polls check until it succeeds or WAIT seconds pass.
wait_for() {
	local what=$1 check=$2 hint=$3
	local deadline=$((SECONDS + WAIT))
	until $check; do
		if ((SECONDS >= deadline)); then
			die "$what did not accept connections within ${WAIT}s. $hint"
		fi
		sleep 1
	done
}

manage_pg=1
[ -n "${GUARD_TEST_PG_DSN:-}" ] && manage_pg=0
manage_my=1
[ -n "${GUARD_TEST_MYSQL_DSN:-}" ] && manage_my=0

# --- Go ---------------------------------------------------------------------
if ! have go; then
	[ -x /usr/local/go/bin/go ] || die "Go not found: install Go 1.26 in /usr/local/go or put go on PATH"
	export PATH="$PATH:/usr/local/go/bin"
fi

# --- packages -----------------------------------------------------------------
pkgs=()
if [ "$manage_pg" = 1 ]; then
	compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || pkgs+=(postgresql)
	have psql || pkgs+=(postgresql-client)
fi
if [ "$manage_my" = 1 ]; then
	[ -x /usr/sbin/mariadbd ] || pkgs+=(mariadb-server)
	have mariadb || have mysql || pkgs+=(mariadb-client)
fi
have gcc || pkgs+=(gcc)
[ -e /usr/include/stdlib.h ] || pkgs+=(libc6-dev)
if ((${#pkgs[@]})); then
	have apt-get || die "missing ${pkgs[*]} and there is no apt-get: install them by hand"
	log "installing from Debian's packages: ${pkgs[*]}"
	priv env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
	priv env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" </dev/null
fi

# --- PostgreSQL -----------------------------------------------------------------
PSQL=(psql -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2 </dev/null >/dev/null 2>&1; }
pg_login() { PGCONNECT_TIMEOUT=5 "${PSQL[@]}" -d postgres -Atc 'SELECT 1' </dev/null >/dev/null 2>&1; }

# pg_cluster prints "VERSION NAME PORT" of the cluster the tests use: the one
# on PG_PORT, else the only one there is; it creates one when the machine has
# a server but no cluster at all.
pg_cluster() {
	local ver name port rest all=()
	while read -r ver name port rest; do
		if [ "$port" = "$PG_PORT" ]; then
			echo "$ver $name $port"
			return 0
		fi
		all+=("$ver $name $port")
	done < <(pg_lsclusters -h 2>/dev/null)
	if ((${#all[@]} == 1)); then
		echo "${all[0]}"
		return 0
	fi
	if ((${#all[@]} == 0)); then
		ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
		log "creating PostgreSQL $ver cluster main on port $PG_PORT"
		priv pg_createcluster --port "$PG_PORT" "$ver" main >&2
		echo "$ver main $PG_PORT"
		return 0
	fi
	die "no PostgreSQL cluster uses port $PG_PORT (pg_lsclusters lists: ${all[*]}); move one to $PG_PORT or set GUARD_TEST_PG_DSN"
}

if [ "$manage_pg" = 1 ]; then
	if ! pg_ready; then
		cluster=$(pg_cluster)
		read -r ver name port <<<"$cluster"
		if [ "$port" != "$PG_PORT" ]; then
			# The machine's only cluster listens elsewhere (Debian picks the
			# next free port when 5432 was taken at install time): use it.
			log "using PostgreSQL cluster $ver/$name on port $port"
			PG_PORT=$port
			PSQL=(psql -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
			export GUARD_TEST_PG_DSN="postgres://postgres@127.0.0.1:$PG_PORT/test?sslmode=disable"
		fi
	fi
	# pg_start asks for a start every few polls: a first start can fail on
	# what an unclean stop left behind (pg_ctlcluster removes a stale pid
	# file, then refuses), and one that is already starting is harmless.
	pg_polls=0
	pg_start() {
		pg_ready && return 0
		if ((pg_polls++ % 5 == 0)); then
			priv pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >&2 || true
		fi
		return 1
	}
	if ! pg_ready; then
		log "starting PostgreSQL cluster $ver/$name"
		wait_for "PostgreSQL on 127.0.0.1:$PG_PORT" pg_start \
			"Start it with: pg_ctlcluster --skip-systemctl-redirect $ver $name start; its log is /var/log/postgresql/postgresql-$ver-$name.log"
	fi
	if ! pg_login; then
		hba=$(as_user postgres psql -X -w -p "$PG_PORT" -d postgres -Atc 'SHOW hba_file' </dev/null) ||
			die "cannot log in to PostgreSQL as postgres, neither over 127.0.0.1 nor over the local socket"
		log "allowing user postgres over 127.0.0.1 and ::1 without a password (trust) in $hba"
		tmp=$(mktemp)
		{
			echo '# Added by guard scripts/test.sh: tests log in as postgres over loopback without a password.'
			echo "host all postgres 127.0.0.1/32 trust"
			echo "host all postgres ::1/128 trust"
			priv cat "$hba" # readable by postgres only (mode 640)
		} >"$tmp"
		# First match wins in pg_hba.conf, so the lines go on top; tee keeps owner and mode.
		priv tee "$hba" <"$tmp" >/dev/null
		rm -f "$tmp"
		as_user postgres psql -X -w -q -p "$PG_PORT" -d postgres -Atc 'SELECT pg_reload_conf()' </dev/null >/dev/null
		wait_for "PostgreSQL login as postgres over 127.0.0.1" pg_login "Check $hba."
	fi
	if [ "$("${PSQL[@]}" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" </dev/null)" != 1 ]; then
		log "creating PostgreSQL database test"
		"${PSQL[@]}" -d postgres -c 'CREATE DATABASE test' </dev/null
	fi
fi

# --- MariaDB --------------------------------------------------------------------
if [ "$manage_my" = 1 ]; then
	MYCLI=mariadb
	have mariadb || MYCLI=mysql
	MYADMIN=mariadb-admin
	have mariadb-admin || MYADMIN=mysqladmin
	MYSOCK=/run/mysqld/mysqld.sock
	MYSQL=("$MYCLI" --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MY_PORT" -u root --connect-timeout=5)

	# ping succeeds whenever the server answers, even when the login is refused.
	my_ready() { "$MYADMIN" --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MY_PORT" --connect-timeout=2 ping </dev/null >/dev/null 2>&1; }
	my_login() { "${MYSQL[@]}" -e 'SELECT 1' </dev/null >/dev/null 2>&1; }
	# my_root runs SQL as MariaDB root over the socket, where a fresh Debian
	# install lets OS root in through unix_socket auth.
	my_root() { priv "$MYCLI" --no-defaults --protocol=socket -S "$MYSOCK" -u root -e "$1" </dev/null; }

	# my_start asks for a start on every poll: a server still shutting down
	# makes start-stop-daemon see it as running, and its exit must not strand us.
	my_start() {
		my_ready && return 0
		priv start-stop-daemon --start --oknodo --quiet --background --exec /usr/sbin/mariadbd -- --user=mysql
		return 1
	}

	if ! my_ready; then
		if [ ! -d /run/mysqld ]; then
			priv mkdir -p /run/mysqld
			priv chown mysql:mysql /run/mysqld
		fi
		if [ ! -d /var/lib/mysql/mysql ]; then
			log "initialising the MariaDB data directory"
			priv mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
		fi
		log "starting MariaDB"
		wait_for "MariaDB on 127.0.0.1:$MY_PORT" my_start \
			"Start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; see its error log (/var/log/mysql/error.log or /var/lib/mysql/*.err)"
	fi
	if ! my_login; then
		log "letting MariaDB root log in over 127.0.0.1 with an empty password"
		my_root "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
			CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;"
		if ! my_login; then
			# The server matched root@localhost (name resolution on): let that
			# account take an empty password too, keeping socket auth.
			my_root "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
		fi
		my_login || die "MariaDB root cannot log in over 127.0.0.1 with an empty password; fix the account or set GUARD_TEST_MYSQL_DSN"
	fi
	"${MYSQL[@]}" -e 'CREATE DATABASE IF NOT EXISTS test' </dev/null
fi

if [ "${GUARD_TEST_SETUP_ONLY:-}" = 1 ]; then
	log "services ready"
	exit 0
fi

# --- vet and test ------------------------------------------------------------------
if (($# == 0)); then
	set -- ./...
fi
log "go vet ./..."
go vet ./...
log "go test -race -count=1 -timeout 60m $*"
go test -race -count=1 -timeout 60m "$@"
