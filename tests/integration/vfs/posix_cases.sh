#!/bin/sh
# POSIX file system behaviour, case by case, in the spirit of pjdfstest (which
# Debian does not package): open, mkdir, rmdir, unlink, rename, link,
# symlink, chmod, chown, truncate, utimens, permissions. Our own port, in
# plain sh with coreutils, run inside the guest on the directory given as $1.
# Prints TAP ("ok N ..." / "not ok N ..."); exits 1 if any case failed.
# POSIX_CREATOR_UID: who a file made by uid 65534 belongs to afterwards
# (65534 on a POSIX file system; a host directory maps every file to its one
# owner instead). POSIX_NO_FIFO=1: mkfifo must fail (host directories).
set -u
DIR="$1"
CREATOR_UID="${POSIX_CREATOR_UID:-65534}"
cd "$DIR" || exit 2
rm -rf posix.t && mkdir posix.t && cd posix.t || exit 2
n=0
fails=0
LOG=/tmp/posix_case.log

t() {
  n=$((n + 1))
  desc="$1"
  shift
  if ("$@") >"$LOG" 2>&1; then
    echo "ok $n $desc"
  else
    echo "not ok $n $desc: $(tr '\n' ' ' <"$LOG" | head -c 300)"
    fails=$((fails + 1))
  fi
}
# fails WANT CMD...: CMD must fail with an error message containing WANT.
fails_with() {
  want="$1"
  shift
  if out=$("$@" 2>&1); then
    echo "unexpectedly succeeded: $out"
    return 1
  fi
  case "$out" in *"$want"*) return 0 ;; esac
  echo "wanted '$want', got: $out"
  return 1
}
eq() { [ "$1" = "$2" ] || { echo "expected '$2', got '$1'"; return 1; }; }
mode() { stat -c %a "$1"; }
type_of() { stat -c %F "$1"; }
nlink() { stat -c %h "$1"; }
ino() { stat -c %i "$1"; }
size() { stat -c %s "$1"; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
long=$(printf 'n%.0s' $(seq 255))
toolong=$(printf 'n%.0s' $(seq 256))
umask 022

# --- open / create ---
t "create makes a regular file" eval ': > f1 && eq "$(type_of f1)" "regular empty file"'
t "create applies umask" eval 'umask 027; : > f2 && [ "$(stat -c %a f2)" = 640 ]'
t "O_EXCL on an existing file is EEXIST" fails_with "File exists" sh -C -c ': > f1'
t "create in a missing directory is ENOENT" fails_with "No such file or directory" touch nodir/f
t "a file as a path component is ENOTDIR" fails_with "Not a directory" touch f1/x
t "opening a directory for writing is EISDIR" eval 'mkdir d1 && ! (: > d1) 2>/dev/null'
t "255-byte names work" eval ': > '"$long"' && [ -f '"$long"' ]'
t "256-byte names are ENAMETOOLONG" fails_with "File name too long" sh -c ': > '"$toolong"
t "O_TRUNC empties a file" eval 'echo data > f3 && : > f3 && [ "$(size f3)" = 0 ]'
t "O_APPEND appends" eval 'echo a > f4 && echo b >> f4 && eq "$(cat f4)" "a
b"'
t "write extends size and sets content" eval 'printf 12345 > f5 && eq "$(size f5)" 5 && eq "$(cat f5)" 12345'
t "writes at a large offset leave a hole" eval 'dd if=/dev/zero of=f6 bs=1 count=1 seek=5G 2>/dev/null && eq "$(size f6)" 5368709121'

# --- mkdir / rmdir ---
t "mkdir makes a directory" eval 'mkdir d2 && eq "$(type_of d2)" directory'
t "mkdir applies umask" eval 'umask 077; mkdir d3 && eq "$(mode d3)" 700'
t "mkdir on an existing name is EEXIST" fails_with "File exists" mkdir d2
t "mkdir raises the parent's link count" eval 'mkdir p1 && a=$(nlink p1) && mkdir p1/c && eq "$(nlink p1)" $((a + 1))'
t "rmdir of a non-empty directory is ENOTEMPTY" fails_with "Directory not empty" rmdir p1
t "rmdir of a file is ENOTDIR" fails_with "Not a directory" rmdir f1
t "rmdir of a missing name is ENOENT" fails_with "No such file or directory" rmdir missing
t "rmdir removes" eval 'rmdir p1/c && rmdir p1 && [ ! -e p1 ]'
t "rmdir of . is EINVAL" eval 'mkdir p2 && cd p2 && ! rmdir . 2>/dev/null'

# --- unlink ---
t "unlink removes a file" eval ': > u1 && rm u1 && [ ! -e u1 ]'
t "unlink of a missing name is ENOENT" fails_with "No such file or directory" rm u1
t "unlink of a directory fails" fails_with "Is a directory" rm d2
t "unlink drops the link count" eval ': > u2 && ln u2 u3 && rm u2 && eq "$(nlink u3)" 1'
t "an unlinked open file stays readable" eval 'echo kept > u4 && exec 3<u4 && rm u4 && eq "$(cat <&3)" kept'

# --- rename ---
t "rename a file" eval 'echo r > r1 && mv r1 r2 && [ ! -e r1 ] && eq "$(cat r2)" r'
t "rename keeps the inode" eval 'a=$(ino r2) && mv r2 r3 && eq "$(ino r3)" "$a"'
t "rename over an existing file replaces it" eval 'echo new > r4 && echo old > r5 && mv r4 r5 && eq "$(cat r5)" new'
t "rename across directories" eval 'mkdir ra rb && echo x > ra/f && mv ra/f rb/g && eq "$(cat rb/g)" x'
t "rename a directory over an empty one" eval 'mkdir rc rd && touch rc/in && mv -T rc rd && [ -e rd/in ] && [ ! -e rc ]'
t "rename a directory over a non-empty one is ENOTEMPTY" eval 'mkdir re rf && touch rf/x && ! mv -T re rf 2>/dev/null && [ -d re ]'
t "rename a file over a directory is EISDIR" eval ': > rg && mkdir rh && ! mv -T rg rh 2>/dev/null && [ -f rg ]'
t "rename a directory over a file is ENOTDIR" eval 'mkdir ri && : > rj && ! mv -T ri rj 2>/dev/null && [ -d ri ]'
t "rename a directory into itself is EINVAL" fails_with "cannot move" mv ri ri/sub
t "renamed directory keeps its contents" eval 'mkdir -p rk/a/b && echo deep > rk/a/b/f && mv rk rl && eq "$(cat rl/a/b/f)" deep'
t "rename of a missing name is ENOENT" fails_with "No such file or directory" mv missing x

# --- link ---
t "link shares the inode" eval 'echo l > l1 && ln l1 l2 && eq "$(ino l1)" "$(ino l2)" && eq "$(nlink l1)" 2'
t "a write through one name shows through the other" eval 'echo more >> l2 && eq "$(cat l1)" "l
more"'
t "link to an existing name is EEXIST" fails_with "File exists" ln l1 l2
t "link of a directory is refused" eval '! ln d2 d2link 2>/dev/null'
t "link of a missing name is ENOENT" fails_with "No such file or directory" ln missing l3

# --- symlink ---
t "symlink stores its target" eval 'ln -s target/path s1 && eq "$(readlink s1)" target/path'
t "lstat sees a symlink" eval 'eq "$(type_of s1)" "symbolic link"'
t "a dangling symlink is ENOENT to open" fails_with "No such file or directory" cat s1
t "symlinks resolve in the guest" eval 'echo via > st && ln -s st s2 && eq "$(cat s2)" via'
t "relative symlinks to directories resolve" eval 'mkdir sd && echo in > sd/f && ln -s sd s3 && eq "$(cat s3/f)" in'
t "symlink over an existing name is EEXIST" fails_with "File exists" ln -s x s1
t "long symlink targets round-trip" eval 'tgt=$(printf "a/%.0s" $(seq 1000))x && ln -s "$tgt" s4 && eq "$(readlink s4)" "$tgt"'

# --- chmod ---
t "chmod changes mode bits" eval ': > c1 && chmod 0640 c1 && eq "$(mode c1)" 640'
t "chmod on a directory" eval 'mkdir c2 && chmod 0711 c2 && eq "$(mode c2)" 711'
t "chmod sticky bit on a directory" eval 'mkdir c3 && chmod 1777 c3 && eq "$(mode c3)" 1777'
t "chmod updates ctime" eval ': > c4 && a=$(stat -c %Z.%z c4) && sleep 1 && chmod 600 c4 && [ "$(stat -c %Z.%z c4)" != "$a" ]'

# --- chown ---
t "chown to the owner's own ids works" eval ': > o1 && chown 0:0 o1 && eq "$(stat -c %u:%g o1)" 0:0'

# --- truncate ---
t "truncate shrinks" eval 'printf 0123456789 > tr1 && truncate -s 4 tr1 && eq "$(cat tr1)" 0123'
t "truncate grows with zeros" eval 'truncate -s 8 tr1 && eq "$(size tr1)" 8 && eq "$(od -An -c tr1 | tr -d " \n")" "0123\\0\\0\\0\\0"'
t "truncate of a directory is EISDIR" fails_with "Is a directory" truncate -s 0 d2
t "ftruncate on an open descriptor" eval 'printf abcdef > tr2 && python3 -c "import os; fd=os.open(\"tr2\", os.O_RDWR); os.ftruncate(fd, 2); os.close(fd)" && eq "$(cat tr2)" ab'

# --- times ---
t "utimens sets mtime" eval ': > m1 && touch -m -d "2001-02-03 04:05:06" m1 && eq "$(stat -c %y m1 | cut -c1-19)" "2001-02-03 04:05:06"'
t "utimens sets atime" eval 'touch -a -d "2002-03-04 05:06:07" m1 && eq "$(stat -c %x m1 | cut -c1-19)" "2002-03-04 05:06:07"'
t "nanoseconds survive" eval 'touch -d "2003-01-01 00:00:00.123456789" m1 && eq "$(stat -c %y m1 | cut -c20-29)" ".123456789"'
t "a write moves mtime" eval 'touch -d "2000-01-01" m2 && echo x >> m2 && [ "$(stat -c %Y m2)" -gt 946684800 ]'
t "creating an entry moves the directory's mtime" eval 'mkdir m3 && touch -d "2000-01-01" m3 && : > m3/new && [ "$(stat -c %Y m3)" -gt 946684800 ]'

# --- permissions (enforced by the guest kernel for non-root users) ---
t "others cannot read a 0600 file" eval 'echo private > pm1 && chmod 600 pm1 && ! as_nobody cat pm1 2>/dev/null'
t "others can read a 0644 file" eval 'echo public > pm2 && chmod 644 pm2 && chmod 755 . && eq "$(as_nobody cat pm2)" public'
t "others cannot create in a 0755 directory" eval 'mkdir pm3 && chmod 755 pm3 && ! as_nobody sh -c ": > pm3/x" 2>/dev/null'
t "others can create in a 1777 directory" eval 'mkdir pm4 && chmod 1777 pm4 && as_nobody sh -c ": > pm4/x" && eq "$(stat -c %u pm4/x)" "$CREATOR_UID"'
t "the sticky bit protects others' files" eval ': > pm4/root && chmod 666 pm4/root && ! as_nobody rm -f pm4/root 2>/dev/null && [ -e pm4/root ]'
t "root may read a 0000 file" eval 'echo r > pm5 && chmod 000 pm5 && eq "$(cat pm5)" r'
t "search permission is needed to walk a directory" eval 'mkdir pm6 && : > pm6/f && chmod 700 pm6 && ! as_nobody stat pm6/f >/dev/null 2>&1'

# --- directories ---
t "listing shows every entry" eval 'mkdir ls1 && for i in $(seq 300); do : > ls1/e$i; done && eq "$(ls ls1 | wc -l)" 300'
t "listing after removals" eval 'rm ls1/e1* && eq "$(ls ls1 | wc -l)" 189'
t "rm -r of a deep tree" eval 'mkdir -p deep/a/b/c/d/e && touch deep/a/b/c/d/e/f deep/a/x && rm -r deep && [ ! -e deep ]'
t "unicode names round-trip" eval 'n="Grüße-日本語-ключ" && echo u > "$n" && eq "$(ls | grep -c "^$n\$")" 1 && eq "$(cat "$n")" u'
t "names with spaces, newlines and leading dashes" eval 'n="a b
c" && : > "$n" && : > ./-dash && [ -e "$n" ] && [ -e ./-dash ] && rm -- "$n" -dash'

# --- misc ---
t "statfs answers" eval 'df -P . >/dev/null'
t "fsync works" python3 -c 'import os; fd=os.open("fs1", os.O_CREAT|os.O_WRONLY); os.write(fd, b"x"); os.fsync(fd); os.fdatasync(fd); os.close(fd)'
if [ "${POSIX_NO_FIFO:-0}" = 1 ]; then
  # A host directory refuses FIFOs (one would hang the next host program opening it).
  t "mkfifo is refused" fails_with "not permitted" mkfifo fifo1
else
  t "mkfifo makes a FIFO usable in the guest" eval 'mkfifo fifo1 && eq "$(type_of fifo1)" fifo && (echo through > fifo1 &) && eq "$(cat fifo1)" through'
fi
t "a unix socket bound here works in the guest" python3 -c '
import socket, os
s = socket.socket(socket.AF_UNIX); s.bind("sock1"); s.listen(1)
c = socket.socket(socket.AF_UNIX); c.connect("sock1"); a, _ = s.accept()
c.sendall(b"hi"); assert a.recv(2) == b"hi"
os.unlink("sock1")'
t "flock locks within the guest" python3 -c '
import fcntl, os
a = open("lk", "w"); b = open("lk", "w")
fcntl.flock(a, fcntl.LOCK_EX)
try:
    fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB); raise SystemExit("second lock granted")
except BlockingIOError: pass'
t "POSIX record locks conflict between processes" python3 -c '
import fcntl, os, sys
f = open("lk2", "w"); fcntl.lockf(f, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    g = open("lk2", "w")
    try: fcntl.lockf(g, fcntl.LOCK_EX | fcntl.LOCK_NB); os._exit(1)
    except OSError: os._exit(0)
sys.exit(os.waitpid(pid, 0)[1])'
t "user xattrs" python3 -c '
import os
open("xa", "w").close()
os.setxattr("xa", "user.k", b"v"); assert os.getxattr("xa", "user.k") == b"v"
assert "user.k" in os.listxattr("xa"); os.removexattr("xa", "user.k")'
t "mmap writes reach the file" python3 -c '
import mmap, os
with open("mm", "wb") as f: f.write(b"\0" * 8192)
with open("mm", "r+b") as f:
    m = mmap.mmap(f.fileno(), 8192); m[100:105] = b"hello"; m.flush(); m.close()
assert open("mm", "rb").read()[100:105] == b"hello"'

cd .. && rm -rf posix.t
echo "1..$n"
[ "$fails" -eq 0 ]
