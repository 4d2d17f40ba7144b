/* visitor-desk: the demo's public service on port 5842 (level20 -> level21). wargate runs it once
 * per TCP connection, as level21, in a sandbox of its own; the connection is its stdin and stdout.
 * It asks for a name for the visitors' book and greets whoever signs it; staff also get the
 * password for level21. It has a memory-safety bug on purpose: finding and using it is the level. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PASSWORD_FILE "/etc/demo_pass/level21"
#define STAFF_BADGE 0x66617473u

/* One entry of the visitors' book. */
struct visitor {
    char name[32];
    uint32_t badge; /* 0 for a visitor */
};

static void hand_over_password(void) {
    char pw[128] = "";
    FILE *f = fopen(PASSWORD_FILE, "r");
    if (!f || !fgets(pw, sizeof pw, f)) {
        printf("The key cupboard is stuck. Please come back later.\n");
        return;
    }
    fclose(f);
    pw[strcspn(pw, "\r\n")] = '\0';
    printf("The password for level21 is %s\n", pw);
}

int main(void) {
    struct visitor v = { .badge = 0 };
    char line[128];

    /* A pipe, not a terminal: without this the prompt would wait in the buffer. */
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("Front desk of wargate-demo.\nPlease sign the visitors' book.\nName: ");
    if (!fgets(line, sizeof line, stdin)) return 0;

    /* Long names are cut to what the book has room for. */
    size_t len = strcspn(line, "\r\n");
    if (len > sizeof v) len = sizeof v;
    memcpy(v.name, line, len);

    if (v.badge == STAFF_BADGE) {
        printf("Good evening, colleague.\n");
        hand_over_password();
        return 0;
    }
    printf("Welcome, %.*s! Enjoy your visit.\n", (int)sizeof v.name, v.name);
    if (v.badge != 0) printf("(Badge %#x? That is not one of ours.)\n", v.badge);
    return 0;
}
