/* pager-shell: a login shell that only shows ~/text.txt with more(1), and ends when more ends.
 * more waits for a key only when the text is taller than the terminal; there, `v` opens the
 * editor in $VISUAL, vi, whose :shell and :!COMMAND run $SHELL. SHELL is set to /bin/sh here, as
 * the level's own $SHELL is this program, which would only show the text again. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    const char *home = getenv("HOME");
    char path[4096];
    snprintf(path, sizeof path, "%s/text.txt", home != NULL ? home : "");
    setenv("SHELL", "/bin/sh", 1);
    setenv("VISUAL", "/usr/bin/vi", 1);
    setenv("EDITOR", "/usr/bin/vi", 1);
    /* -e: exit at the end of the text. util-linux more (2.38 at least) otherwise waits there on a
     * terminal, and a tall window would then be as good as a small one. */
    execl("/usr/bin/more", "more", "-e", path, (char *)NULL);
    perror("/usr/bin/more");
    return 1;
}
