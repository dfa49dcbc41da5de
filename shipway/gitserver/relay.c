/*
 * The pre-receive hook git runs for a push: it hands the push to the shipway server that ran
 * git and prints what the server says back. It is a small C program so that a push waits for
 * no interpreter's start (a bare `python -I -S` took 10 ms of every push).
 *
 * The server passes a socket down to git for each push (its number in SHIPWAY_HOOK_FD); nothing
 * else can reach it. The hook sends `LENGTH\n` and then LENGTH bytes: the push's quarantine
 * directory (an empty line when there is none) and git's `OLD NEW REF` lines. The server answers
 * with lines: `say TEXT` for each line the pusher sees as `remote: TEXT`, then `exit CODE`; a
 * non-zero code rejects the whole push.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t written = write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += written;
        size -= (size_t)written;
    }
    return 0;
}

static void say(const char *text) {
    write_all(1, text, strlen(text));
}

/* The body sent to the server: the quarantine directory, a newline, then all of stdin. */
static char *body(size_t *size) {
    const char *quarantine = getenv("GIT_QUARANTINE_PATH");
    size_t used = quarantine ? strlen(quarantine) : 0, room = used + 4096;
    char *data = malloc(room);
    if (!data)
        return NULL;
    memcpy(data, quarantine ? quarantine : "", used);
    data[used++] = '\n';
    for (;;) {
        if (used == room) {
            char *grown = realloc(data, room *= 2);
            if (!grown) {
                free(data);
                return NULL;
            }
            data = grown;
        }
        ssize_t got = read(0, data + used, room - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(data);
            return NULL;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    *size = used;
    return data;
}

/* Print each line the server sends until `exit CODE`: CODE, or -1 if the server went first. */
static int relay(int server) {
    size_t room = 65536, pending = 0;
    char *line = malloc(room);
    for (;;) {
        char *end = line ? memchr(line, '\n', pending) : NULL;
        if (end) {
            *end = '\0';
            char *space = strchr(line, ' ');
            char *text = space ? space + 1 : end;
            size_t kind = space ? (size_t)(space - line) : (size_t)(end - line);
            if (kind == 4 && !memcmp(line, "exit", 4)) {
                char *after;
                long code = strtol(text, &after, 10);
                free(line);
                return (after == text || *after) ? 1 : (int)code;
            }
            *end = '\n';
            write_all(1, text, (size_t)(end - text) + 1);
            size_t used = (size_t)(end - line) + 1;
            memmove(line, end + 1, pending - used);
            pending -= used;
            continue;
        }
        if (line && pending == room) { /* a line longer than any so far: room for more */
            char *grown = realloc(line, room *= 2);
            if (!grown)
                free(line);
            line = grown;
        }
        if (!line)
            return -1;
        ssize_t got = read(server, line + pending, room - pending);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            free(line);
            return -1;
        }
        pending += (size_t)got;
    }
}

int main(void) {
    const char *fd = getenv("SHIPWAY_HOOK_FD");
    if (!fd || !*fd || strspn(fd, "0123456789") != strlen(fd)) {
        say(" !     shipway's hook runs under shipway's git server only "
            "(SHIPWAY_HOOK_FD is unset)\n");
        return 1;
    }
    int server = atoi(fd);
    size_t size = 0;
    char *data = body(&size);
    char header[32];
    int length = snprintf(header, sizeof header, "%zu\n", size);
    if (!data || write_all(server, header, (size_t)length) || write_all(server, data, size)) {
        say(" !     shipway's hook could not hand the push to shipway\n");
        return 1;
    }
    free(data);
    int code = relay(server);
    if (code < 0) {
        say(" !     shipway stopped before it had deployed the push\n");
        return 1;
    }
    return code;
}
