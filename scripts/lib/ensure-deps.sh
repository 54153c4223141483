# Sourced by the lab and test commands: make sure the project's dependencies (and with
# them Node 24, from the devDependency "node") are installed and first on PATH.
if [[ ! -x node_modules/.bin/node ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "deps: installing project dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
