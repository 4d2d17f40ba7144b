// The script that becomes PID 1 of a sandbox. It runs as root in fresh mount, pid, uts, ipc and
// net namespaces (made by unshare), builds the root filesystem there, pivots into it, then stays
// as the namespace's init: orphans are reaped by the kernel, and it exits when the gateway's pipe closes.
// It must never mount anything outside its private mount namespace.

/**
 * Parameters come in the environment (so `ps` inside shows a short command line, not host paths):
 * WG_MNT mount point (an empty host dir, private to this namespace), WG_HOST hostname,
 * WG_SIZE tmpfs size of the writable layer, WG_INODES its inode cap, WG_LOWER overlay lowerdir.
 *
 * Lifetime, by construction: fd 0 is a pipe whose only writer is the gateway. PID 1 ends up as
 * `cat` reading it until EOF, which comes when the gateway closes it (session end) or dies (even
 * by SIGKILL). Then PID 1 exits, and the kernel kills every process left in the namespace.
 * Every mount below lives in this mount namespace only and vanishes with its last process.
 */
export const INIT_SCRIPT = String.raw`
set -eu
M=$WG_MNT HOST=$WG_HOST SIZE=$WG_SIZE INODES=$WG_INODES LOWER=$WG_LOWER
unset WG_MNT WG_HOST WG_SIZE WG_INODES WG_LOWER WG_INIT
read -r HOSTPID _ </proc/self/stat

mount -t tmpfs -o "size=$SIZE,nr_inodes=$INODES,mode=0755" wargate-rw "$M"
mkdir "$M/upper" "$M/work" "$M/root"
mount -t overlay -o "lowerdir=$LOWER,upperdir=$M/upper,workdir=$M/work" wargate-root "$M/root"
R=$M/root

# Host programs, read-only. nosuid: setuid-root programs of the host (su, mount, ...) are inert;
# the game's own setuid binaries live in the game layer and keep working.
mount --bind -o ro,nosuid,nodev /usr "$R/usr"

mount -t proc -o nosuid,nodev,noexec proc "$R/proc"

# /dev comes from the base layer (null, zero, full, random, urandom, tty and the usual links); the
# sandbox adds a devpts instance of its own, so a player can never open another player's terminal.
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$R/dev/pts"
mount -t tmpfs -o size=16m,nr_inodes=1024,mode=1777,nosuid,nodev shm "$R/dev/shm"

echo "$HOST" >/proc/sys/kernel/hostname
ip link set lo up

# The host's root is parked on /mnt only until it is detached: nothing of it stays reachable.
cd "$R"
pivot_root . mnt
umount -l /mnt
cd /

# The OOM killer, when the sandbox's cgroup runs out of memory, picks a player's process, never PID 1.
echo -1000 2>/dev/null >/proc/self/oom_score_adj || : # (some hosts refuse; then the OOM score stays as it is)
echo "ready $HOSTPID"
exec 1>/dev/null 2>&1
# From here PID 1 is cat. With SIGCHLD ignored (set by env, kept across exec), the kernel reaps
# every orphan that ends up under PID 1 as soon as it exits: no waiting loop, no extra process.
# (dash's own trap '' CHLD does not reach the exec'd program.)
exec /usr/bin/env --ignore-signal=CHLD /usr/bin/cat
`;

/** argv that runs INIT_SCRIPT, which is passed as WG_INIT in the environment. */
export const INIT_ARGV = ['/bin/sh', '-c', 'eval "$WG_INIT"'];
