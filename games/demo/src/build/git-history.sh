#!/bin/sh
# Build step of level18: gives the bare repository $1 a history in which the password ($2) was
# committed and then removed again. Fixed names and dates: the same password, the same history.
set -eu
repo=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME="$work" GIT_CONFIG_NOSYSTEM=1
# The repository belongs to its level, not to the root running this: tell git that is fine (git
# 2.39 takes safe.directory from the global config only, not from -c or the environment).
git config --global safe.directory '*'
export GIT_AUTHOR_NAME=level18 GIT_AUTHOR_EMAIL=level18@wargate-demo GIT_COMMITTER_NAME=level18 GIT_COMMITTER_EMAIL=level18@wargate-demo
commit() { # commit DAY MESSAGE
    GIT_AUTHOR_DATE="2024-01-0$1T12:00:00Z" GIT_COMMITTER_DATE="2024-01-0$1T12:00:00Z" git commit --quiet --message "$2"
}
git clone --quiet "$repo" "$work/repo"
cd "$work/repo"
printf 'The password for level19: %s\n' "$2" > password.txt
git add password.txt
commit 2 "Keep the password for level19 here, where I cannot lose it"
git rm --quiet password.txt
cat > README.md <<'TEXT'
# Notes of level18

Nothing to see here any more. I used to keep my password for the next level in this repository,
but I took it out again. It is safe now, isn't it?
TEXT
git add README.md
commit 3 "Take the password out again: it has no business in here"
git push --quiet origin main
