/*
 * The sandbox's supervisor: `reaper PID` waits for every process that ends up below it, then
 * exits as PID (bubblewrap) did: its exit code, or 128 + N when signal N ended it.
 *
 * The process shipway forks for a sandbox becomes this program at once (see child.py), having
 * made itself a child subreaper that dies with shipway; both settings outlive the exec. So the
 * sandbox's pid 1, which bubblewrap leaves behind when it exits, is reaped here rather than by
 * the host's init, and shipway sees this process end only once nothing of the sandbox is left.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    pid_t bwrap = argc == 2 ? (pid_t)atol(argv[1]) : 0;
    int code = 255;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            return code; /* ECHILD: none is left */
        }
        if (pid == bwrap)
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}
