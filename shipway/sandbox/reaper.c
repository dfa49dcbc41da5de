/*
 * The sandbox's supervisor, which shipway runs in place of bubblewrap:
 *
 *   reaper [--parent PID] [--error-fd FD] [--cgroup PROCS_FILE]... [--rlimit RESOURCE VALUE]...
 *          [--stage ROOT [--bind SOURCE TARGET d|f]...] [--uid UID --gid GID]
 *          -- EXECUTABLE ARGV0 [ARG]...
 *
 * It makes itself a child subreaper that dies with shipway (PID, which must still be its
 * parent then), and forks. The child sets up the sandbox's process and execs EXECUTABLE
 * (bubblewrap) as ARGV0 ARG...: it joins each cgroup, sets each rlimit to VALUE, binds each
 * SOURCE at TARGET (a directory, d, or a file, f) under a tmpfs at ROOT in a mount namespace
 * of its own, drops to UID and GID for good, and dies with this process. The parent holds no
 * file of the sandbox's, waits for every process that ends up below it, then exits as
 * bubblewrap did: its exit code, or 128 + N when signal N ended it.
 *
 * bubblewrap exits as soon as the command has, leaving the sandbox's pid 1 to die: it is
 * reaped here rather than by the host's init, and shipway sees this process end only once
 * nothing of the sandbox is left.
 *
 * A step that fails writes why to FD, which the child holds until its exec succeeds: shipway
 * reads that pipe to its end before it goes on. shipway needs no fork of its own for any of
 * this, so it starts the supervisor with vfork and exec, whatever its size or event loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STEPS 64

struct bind {
    const char *source, *target;
    int is_dir;
};

struct setup {
    pid_t parent;
    int error_fd;
    const char *cgroups[MAX_STEPS];
    int ncgroups;
    int resources[MAX_STEPS];
    rlim_t values[MAX_STEPS];
    int nrlimits;
    const char *stage;
    struct bind binds[MAX_STEPS];
    int nbinds;
    long uid, gid;
    char **exec; /* EXECUTABLE ARGV0 ARG... */
};

static int error_fd = -1;

/* Say why in the error pipe, then end: before the fork this process, after it the child. */
static void fail(const char *format, ...) {
    char message[1024];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (error_fd >= 0 && length > 0) {
        size_t size = (size_t)length < sizeof message ? (size_t)length : sizeof message - 1;
        ssize_t written = write(error_fd, message, size);
        (void)written;
    }
    _exit(127);
}

static long number(const char *text, const char *what) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end || value < 0)
        fail("cannot set up the sandbox: bad %s %s", what, text);
    return (long)value;
}

static void room(int used, const char *option) {
    if (used == MAX_STEPS)
        fail("cannot set up the sandbox: more than %d %s", MAX_STEPS, option);
}

static void parse(int argc, char **argv, struct setup *s) {
    memset(s, 0, sizeof *s);
    s->error_fd = -1;
    s->uid = s->gid = -1;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        const char *option = argv[i];
        int left = argc - i - 1;
        if (!strcmp(option, "--error-fd") && left >= 1) {
            s->error_fd = error_fd = (int)number(argv[++i], "fd");
        } else if (!strcmp(option, "--parent") && left >= 1) {
            s->parent = (pid_t)number(argv[++i], "pid");
        } else if (!strcmp(option, "--cgroup") && left >= 1) {
            room(s->ncgroups, option);
            s->cgroups[s->ncgroups++] = argv[++i];
        } else if (!strcmp(option, "--rlimit") && left >= 2) {
            room(s->nrlimits, option);
            s->resources[s->nrlimits] = (int)number(argv[++i], "resource");
            s->values[s->nrlimits++] = (rlim_t)strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(option, "--stage") && left >= 1) {
            s->stage = argv[++i];
        } else if (!strcmp(option, "--bind") && left >= 3) {
            room(s->nbinds, option);
            struct bind *b = &s->binds[s->nbinds++];
            b->source = argv[++i];
            b->target = argv[++i];
            b->is_dir = !strcmp(argv[++i], "d");
        } else if (!strcmp(option, "--uid") && left >= 1) {
            s->uid = number(argv[++i], "uid");
        } else if (!strcmp(option, "--gid") && left >= 1) {
            s->gid = number(argv[++i], "gid");
        } else {
            fail("cannot set up the sandbox: the supervisor was given %s", option);
        }
    }
    if (i + 2 >= argc) /* "--", EXECUTABLE and ARGV0 at least */
        fail("cannot set up the sandbox: the supervisor was given no command");
    s->exec = &argv[i + 1];
}

/* The child: become the sandbox's process, then bubblewrap. */
static void set_up_and_exec(const struct setup *s, pid_t supervisor) {
    if (s->error_fd >= 0 && fcntl(s->error_fd, F_SETFD, FD_CLOEXEC))
        fail("cannot set up the sandbox: error pipe: %s", strerror(errno));
    char pid[32];
    int length = snprintf(pid, sizeof pid, "%d", (int)getpid());
    for (int i = 0; i < s->ncgroups; i++) {
        int fd = open(s->cgroups[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, pid, (size_t)length) != length)
            fail("cannot set up the sandbox: cannot join %s: %s", s->cgroups[i], strerror(errno));
        close(fd);
    }
    for (int i = 0; i < s->nrlimits; i++) {
        struct rlimit limit = {s->values[i], s->values[i]};
        if (setrlimit(s->resources[i], &limit))
            fail("cannot set up the sandbox: cannot set limit %d: %s", s->resources[i],
                 strerror(errno));
    }
    if (s->stage) {
        /* Root binds each source to a path bubblewrap can reach: nobody else sees them. */
        if (unshare(CLONE_NEWNS))
            fail("cannot set up the sandbox: cannot unshare the mount namespace: %s",
                 strerror(errno));
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
            fail("cannot set up the sandbox: cannot make / private: %s", strerror(errno));
        if (mount("tmpfs", s->stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m"))
            fail("cannot set up the sandbox: cannot mount a tmpfs on %s: %s", s->stage,
                 strerror(errno));
        for (int i = 0; i < s->nbinds; i++) {
            const struct bind *b = &s->binds[i];
            int made = b->is_dir ? mkdir(b->target, 0755)
                                 : open(b->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (made < 0)
                fail("cannot set up the sandbox: cannot make %s: %s", b->target, strerror(errno));
            if (!b->is_dir)
                close(made);
            if (mount(b->source, b->target, NULL, MS_BIND | MS_REC, NULL))
                fail("cannot set up the sandbox: cannot bind %s: %s", b->source, strerror(errno));
        }
    }
    if (s->uid >= 0 && s->gid >= 0) {
        if (setgroups(0, NULL) || setresgid((gid_t)s->gid, (gid_t)s->gid, (gid_t)s->gid) ||
            setresuid((uid_t)s->uid, (uid_t)s->uid, (uid_t)s->uid))
            fail("cannot set up the sandbox: cannot become uid %ld: %s", s->uid, strerror(errno));
    }
    /* After the switch, which clears it: bubblewrap dies with its supervisor. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != supervisor)
        fail("cannot set up the sandbox: its supervisor is gone");
    execv(s->exec[0], &s->exec[1]);
    fail("cannot start bubblewrap: %s: %s", s->exec[0], strerror(errno));
}

/* The parent: hold nothing of the sandbox's, reap everything below, exit as bubblewrap did. */
static int reap(pid_t bwrap) {
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3 && null >= 0; fd++)
        dup2(null, fd);
    if (close_range(3, ~0U, 0)) {
        for (long fd = sysconf(_SC_OPEN_MAX) - 1; fd >= 3; fd--)
            close((int)fd);
    }
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

int main(int argc, char **argv) {
    struct setup setup;
    parse(argc, argv, &setup);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) || prctl(PR_SET_PDEATHSIG, SIGKILL))
        fail("cannot set up the sandbox: prctl: %s", strerror(errno));
    if (setup.parent && getppid() != setup.parent)
        fail("cannot set up the sandbox: shipway is gone");
    /* What shipway ignores stays ignored through an exec: a SIGTERM must end the sandbox. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    pid_t supervisor = getpid();
    pid_t bwrap = fork();
    if (bwrap < 0)
        fail("cannot set up the sandbox: fork: %s", strerror(errno));
    if (bwrap == 0)
        set_up_and_exec(&setup, supervisor);
    return reap(bwrap);
}
