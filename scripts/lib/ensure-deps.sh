# Sourced by the lab and test commands: make sure the project's dependencies (and with
# them Node 24, from the devDependency "node") are installed and first on PATH.
if [[ ! -x node_modules/.bin/node ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "deps: installing project dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [[ ! -x node_modules/.bin/node ]]; then
  echo "deps: npm ci did not provide node_modules/.bin/node (Node 24); is the \"node\" package's install script allowed in package.json allowScripts?" >&2
  exit 1
fi
export PATH="$PWD/node_modules/.bin:$PATH"
hash -r
