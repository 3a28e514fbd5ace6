#!/usr/bin/env bash
# Validates the deployment files with whichever tools this machine has:
#   systemd-analyze verify (the units), caddy validate (Caddyfiles), nginx -t (nginx.conf).
# Debian: apt install systemd caddy nginx. Run from the repository root after `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")"
checked=0

if command -v systemd-analyze >/dev/null; then
  # The units name /usr/local/bin/survey-server; verify needs it to exist.
  if [[ -x /usr/local/bin/survey-server ]]; then
    systemd-analyze verify ./survey-server.service ./survey-server-backup.service ./survey-server-backup.timer
    # The unit again with the PostgreSQL nodes' drop-in (verify reads drop-ins beside the unit).
    units=$(mktemp -d)
    cp -r survey-server.service survey-server.service.d "$units/"
    (cd "$units" && systemd-analyze verify ./survey-server.service)
    rm -rf "$units"
    echo "systemd units: ok"; checked=$((checked + 1))
  else
    echo "systemd units: skipped (install the binary at /usr/local/bin/survey-server first)"
  fi
fi

if command -v caddy >/dev/null; then
  for file in Caddyfile Caddyfile.intranet Caddyfile.compose multi-node/Caddyfile; do
    caddy validate --config "$file" --adapter caddyfile >/dev/null 2>&1 \
      || { caddy validate --config "$file" --adapter caddyfile; exit 1; }
    echo "$file: ok"
  done
  checked=$((checked + 1))
fi

if command -v nginx >/dev/null; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  # nginx -t opens the certificates it names: point them at a throwaway self-signed pair.
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=survey.example.gov.cn \
    -keyout "$scratch/key.pem" -out "$scratch/cert.pem" 2>/dev/null
  sed -e "s|/etc/letsencrypt/live/survey.example.gov.cn/fullchain.pem|$scratch/cert.pem|" \
      -e "s|/etc/letsencrypt/live/survey.example.gov.cn/privkey.pem|$scratch/key.pem|" \
      nginx.conf > "$scratch/site.conf"
  printf 'events {}\nhttp {\n  include %s/site.conf;\n}\n' "$scratch" > "$scratch/nginx.conf"
  nginx -t -q -c "$scratch/nginx.conf" -g "pid $scratch/nginx.pid; error_log stderr;"
  echo "nginx.conf: ok"; checked=$((checked + 1))
fi

echo "checked $checked of 3 kinds of file"
