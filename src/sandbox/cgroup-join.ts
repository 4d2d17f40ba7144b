// Puts a process into the sandbox's cgroup before it runs anything: a tiny sh writes its own pid to
// each cgroup.procs file, then execs the real command (same pid). So the namespace chain and every
// channel's nsenter (and all they fork) are limited and accounted from their first instruction.
const JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"';

export function joinCgroup(procsFiles: string[], argv: string[]): string[] {
  return ['/bin/sh', '-c', JOIN_SCRIPT, 'wargate-join', ...procsFiles, '--', ...argv];
}
