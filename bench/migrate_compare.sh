#!/bin/sh
# Issue 15's migration benchmark (BENCHMARKS.md): the same Dovecot source, copied over IMAPS
# by `mssante migrate --jobs 4` and by `doveadm backup -R` with the imapc backend (4 accounts
# at a time), each timed. The source is a generated archive's Maildirs (bench/gen_archive.py:
# every BAL a Dovecot account, password `bench-pass`), served by Debian's Dovecot on loopback.
#
#   bench/migrate_compare.sh BIN WORKDIR ARCHIVE.tar.zst BALS
#
# Run as root (Dovecot drops privileges to `mail`). WORKDIR must not exist; remove it after.
set -eu
BIN=$1 W=$2 ARCHIVE=$3 BALS=$4
PASS=bench-pass
mkdir -p "$W/src" "$W/run" "$W/state" "$W/doveadm"
zstd -dc "$ARCHIVE" | tar -xf - -C "$W/src"
chown -R mail:mail "$W/src" "$W/doveadm"
chmod 755 "$W"
# A private CA and the source's certificate (rustls refuses a CA certificate as the leaf).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$W/key.pem" -out "$W/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$W/leaf.ext"
openssl x509 -req -in "$W/leaf.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
    -extfile "$W/leaf.ext" -out "$W/cert.pem" 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ACCOUNTS=$(ls "$W/src/bals" | head -n "$BALS")
for a in $ACCOUNTS; do echo "$a:{PLAIN}$PASS::::::"; done > "$W/passwd"
cat > "$W/dovecot.conf" <<EOF
instance_name = dovecot-migrate-bench-$$
base_dir = $W/run
state_dir = $W/state
log_path = $W/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = required
ssl_cert = <$W/cert.pem
ssl_key = <$W/key.pem
auth_mechanisms = plain
first_valid_uid = 1
mail_uid = mail
mail_gid = mail
mail_location = maildir:$W/src/bals/%u/Maildir
namespace inbox {
  inbox = yes
  separator = .
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $W/passwd
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$W/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $PORT
    ssl = yes
  }
}
EOF
/usr/sbin/dovecot -c "$W/dovecot.conf"
trap '/usr/sbin/dovecot -c "$W/dovecot.conf" stop' EXIT
sleep 2
MESSAGES=$(find $(for a in $ACCOUNTS; do echo "$W/src/bals/$a/Maildir"; done) -path '*/cur/*' -type f | wc -l)
echo "source: $BALS accounts, $MESSAGES messages"

# Ours: a fresh SQLite instance with the target BALs.
mkdir "$W/ours"
printf 'hostname = "mx.bench.test"\ndata_dir = "%s"\ndatabase_url = "sqlite://%s/db.sqlite"\n' \
    "$W/ours" "$W/ours" > "$W/ours.toml"
"$BIN" --config "$W/ours.toml" init >/dev/null
"$BIN" --config "$W/ours.toml" domain add bench.mssante.test >/dev/null
echo "source_login,secret,target_bal" > "$W/accounts.csv"
i=0
for a in $ACCOUNTS; do
    i=$((i + 1))
    "$BIN" --config "$W/ours.toml" bal create "$a" --type PER --rpps "$(printf '1%010d' $i)" >/dev/null
    echo "$a,$PASS,$a" >> "$W/accounts.csv"
done
echo "== mssante migrate: load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f '%e s wall, %M KB max RSS' "$BIN" --config "$W/ours.toml" migrate \
    --source "imaps://127.0.0.1:$PORT" --source-ca "$W/ca.pem" --csv "$W/accounts.csv" --jobs 4 \
    > "$W/migrate.out" 2> "$W/migrate.err" || { tail "$W/migrate.err"; exit 1; }
tail -2 "$W/migrate.err"
echo "== doveadm backup -R (imapc): load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f '%e s wall, %M KB max RSS (xargs)' sh -c "echo '$ACCOUNTS' | tr ' ' '\n' | xargs -P 4 -I USER \
    doveadm -c '$W/dovecot.conf' -o 'mail_location=maildir:$W/doveadm/USER' \
    -o imapc_host=127.0.0.1 -o imapc_port=$PORT -o imapc_ssl=imaps -o imapc_ssl_verify=no \
    -o imapc_user=USER -o imapc_password=$PASS -o imapc_features=rfc822.size,fetch-headers \
    backup -R -u USER imapc:" 2>&1 | tail -3
echo "doveadm copied $(find "$W/doveadm" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l) messages"
echo "== done: load $(cut -d' ' -f1-3 /proc/loadavg)"
