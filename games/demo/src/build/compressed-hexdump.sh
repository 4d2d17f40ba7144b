#!/bin/sh
# Build step of level14: prints an xxd hexdump of a sentence holding the password ($1), wrapped in
# layers of gzip, bzip2 and tar, each renamed so that its name says nothing (the player asks `file`).
# Fixed names, dates and owners: the same password always gives the same dump.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
packtar() { # packtar FILE NAME-INSIDE: FILE becomes a tar holding it as NAME-INSIDE
    mv "$1" "$2"
    tar --create --file "$1" --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu "$2"
    rm -f "$2"
}
printf 'The password for level15 is %s\n' "$1" > data
gzip -9 -n -c data > x && mv x data
bzip2 -9 -c data > x && mv x data
packtar data holiday-photo.jpg
gzip -9 -n -c data > x && mv x data
packtar data readme.txt
bzip2 -9 -c data > x && mv x data
gzip -9 -n -c data > x && mv x data
xxd data
