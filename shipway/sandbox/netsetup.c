/*
 * A networked sandbox's way out (see network.py), in two steps that shipway starts with vfork
 * and exec rather than with forks of its own:
 *
 *   netsetup route [--uid UID --gid GID] [--userns-fd FD] --netns-fd FD
 *                  [--unreachable ADDRESS/BITS]...
 *   netsetup relay [--uid UID --gid GID] [--private-tun] -- EXECUTABLE ARGV0 [ARG]...
 *
 * route: as UID and GID, joins the sandbox's user namespace (FD, when given) and its network
 * namespace, waits until bubblewrap has set up lo with 127.0.0.1, adds an unreachable route to
 * each network, and exits 0.
 *
 * relay: with --private-tun, makes a /dev/net/tun that anyone may open in a mount namespace of
 * its own, which nothing else sees; then it drops to UID and GID for good and execs EXECUTABLE
 * (slirp4netns) as ARGV0 ARG..., which stays in the host's network namespace.
 *
 * Both die with the process that started them. A step that fails says why on stderr and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAX_ROUTES 64
#define TUN "/dev/net/tun"

struct route {
    struct in_addr address;
    int bits;
};

struct options {
    long uid, gid;
    int userns_fd, netns_fd;
    struct route routes[MAX_ROUTES];
    int nroutes;
    int private_tun;
    char **exec; /* EXECUTABLE ARGV0 ARG... */
};

static void fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    _exit(1);
}

static long number(const char *text, const char *what) {
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end || value < 0)
        fail("bad %s %s", what, text);
    return (long)value;
}

static struct route network(const char *text) {
    char address[INET_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t length = slash ? (size_t)(slash - text) : 0;
    struct route route;
    if (!slash || length >= sizeof address)
        fail("bad network %s", text);
    memcpy(address, text, length);
    address[length] = '\0';
    route.bits = (int)number(slash + 1, "prefix length");
    if (route.bits > 32 || inet_pton(AF_INET, address, &route.address) != 1)
        fail("bad network %s", text);
    return route;
}

static void parse(int argc, char **argv, int relay, struct options *o) {
    memset(o, 0, sizeof *o);
    o->uid = o->gid = -1;
    o->userns_fd = o->netns_fd = -1;
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        const char *option = argv[i];
        int left = argc - i - 1;
        if (!strcmp(option, "--uid") && left >= 1) {
            o->uid = number(argv[++i], "uid");
        } else if (!strcmp(option, "--gid") && left >= 1) {
            o->gid = number(argv[++i], "gid");
        } else if (!relay && !strcmp(option, "--userns-fd") && left >= 1) {
            o->userns_fd = (int)number(argv[++i], "fd");
        } else if (!relay && !strcmp(option, "--netns-fd") && left >= 1) {
            o->netns_fd = (int)number(argv[++i], "fd");
        } else if (!relay && !strcmp(option, "--unreachable") && left >= 1) {
            if (o->nroutes == MAX_ROUTES)
                fail("more than %d networks to make unreachable", MAX_ROUTES);
            o->routes[o->nroutes++] = network(argv[++i]);
        } else if (relay && !strcmp(option, "--private-tun")) {
            o->private_tun = 1;
        } else {
            fail("netsetup was given %s", option);
        }
    }
    if (relay) {
        if (i + 2 >= argc) /* "--", EXECUTABLE and ARGV0 at least */
            fail("netsetup relay was given no command");
        o->exec = &argv[i + 1];
    } else if (i < argc || o->netns_fd < 0) {
        fail("netsetup route needs --netns-fd and no command");
    }
}

/* Become UID and GID for good (when given), and die with shipway: the parent-death signal is
 * set after the switch, which clears it. */
static void drop_privileges(const struct options *o, pid_t parent) {
    if (o->uid >= 0 && o->gid >= 0) {
        if (setgroups(0, NULL) || setresgid((gid_t)o->gid, (gid_t)o->gid, (gid_t)o->gid) ||
            setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid))
            fail("cannot become uid %ld: %s", o->uid, strerror(errno));
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
        fail("shipway is gone");
}

/* Whether lo is up with 127.0.0.1: bubblewrap has set up the namespace's loopback. */
static int loopback_up(int probe) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strcpy(request.ifr_name, "lo");
    if (ioctl(probe, SIOCGIFFLAGS, &request))
        fail("cannot read lo's flags: %s", strerror(errno));
    if (!(request.ifr_flags & IFF_UP))
        return 0;
    if (ioctl(probe, SIOCGIFADDR, &request)) {
        if (errno == EADDRNOTAVAIL)
            return 0;
        fail("cannot read lo's address: %s", strerror(errno));
    }
    const struct sockaddr_in *address = (const struct sockaddr_in *)&request.ifr_addr;
    return address->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

static void await_loopback(void) {
    int changes = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (changes < 0 || probe < 0)
        fail("cannot open a socket in the sandbox's namespace: %s", strerror(errno));
    /* Listening before looking: no change between the two goes unseen. */
    struct sockaddr_nl groups = {.nl_family = AF_NETLINK,
                                 .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR};
    if (bind(changes, (struct sockaddr *)&groups, sizeof groups))
        fail("cannot listen for lo's changes: %s", strerror(errno));
    char buffer[8192];
    while (!loopback_up(probe)) {
        /* ENOBUFS: changes were dropped, so look again. */
        if (recv(changes, buffer, sizeof buffer, 0) < 0 && errno != ENOBUFS && errno != EINTR)
            fail("cannot hear lo's changes: %s", strerror(errno));
    }
    close(changes);
    close(probe);
}

/* rtnetlink's RTM_NEWROUTE, type unreachable, for each network: `ip route add unreachable`. */
static void add_unreachable(const struct options *o) {
    int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (sock < 0)
        fail("cannot open a netlink socket: %s", strerror(errno));
    for (int i = 0; i < o->nroutes; i++) {
        const struct route *route = &o->routes[i];
        struct {
            struct nlmsghdr header;
            struct rtmsg message;
            struct rtattr attribute;
            struct in_addr destination;
        } request;
        memset(&request, 0, sizeof request);
        request.header.nlmsg_len = sizeof request;
        request.header.nlmsg_type = RTM_NEWROUTE;
        request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE;
        request.header.nlmsg_seq = (unsigned)i + 1;
        request.message.rtm_family = AF_INET;
        request.message.rtm_dst_len = (unsigned char)route->bits;
        request.message.rtm_table = RT_TABLE_MAIN;
        request.message.rtm_protocol = RTPROT_STATIC;
        request.message.rtm_scope = RT_SCOPE_UNIVERSE;
        request.message.rtm_type = RTN_UNREACHABLE;
        request.attribute.rta_len = RTA_LENGTH(sizeof request.destination);
        request.attribute.rta_type = RTA_DST;
        request.destination = route->address;
        if (send(sock, &request, sizeof request, 0) != (ssize_t)sizeof request)
            fail("cannot ask for a route: %s", strerror(errno));
        struct {
            struct nlmsghdr header;
            struct nlmsgerr error;
        } answer;
        ssize_t got = recv(sock, &answer, sizeof answer, 0);
        if (got < (ssize_t)sizeof answer || answer.header.nlmsg_type != NLMSG_ERROR)
            fail("no answer to a route: %s", got < 0 ? strerror(errno) : "short");
        if (answer.error.error) {
            char shown[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &route->address, shown, sizeof shown);
            fail("cannot add route to %s/%d: %s", shown, route->bits,
                 strerror(-answer.error.error));
        }
    }
    close(sock);
}

static int route(const struct options *o, pid_t parent) {
    drop_privileges(o, parent);
    if (o->userns_fd >= 0 && setns(o->userns_fd, CLONE_NEWUSER))
        fail("cannot join the sandbox's user namespace: %s", strerror(errno));
    if (setns(o->netns_fd, CLONE_NEWNET))
        fail("cannot join the sandbox's network namespace: %s", strerror(errno));
    await_loopback();
    add_unreachable(o);
    return 0;
}

/* A /dev/net/tun the sandbox uid may open (the host's may be root's only), seen by none but
 * this process and what it execs. */
static void private_tun(void) {
    struct stat device;
    if (stat(TUN, &device))
        fail("cannot find %s: %s", TUN, strerror(errno));
    if (unshare(CLONE_NEWNS))
        fail("cannot unshare the mount namespace: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        fail("cannot make / private: %s", strerror(errno));
    if (mount("tmpfs", "/dev/net", "tmpfs", MS_NOSUID, "mode=0755,size=4k"))
        fail("cannot mount a tmpfs on /dev/net: %s", strerror(errno));
    if (mknod(TUN, S_IFCHR | 0666, device.st_rdev) || chmod(TUN, 0666))
        fail("cannot make %s: %s", TUN, strerror(errno));
}

static int relay(const struct options *o, pid_t parent) {
    if (o->private_tun)
        private_tun();
    drop_privileges(o, parent);
    execv(o->exec[0], &o->exec[1]);
    fail("cannot run %s: %s", o->exec[0], strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    pid_t parent = getppid();
    struct options options;
    if (argc >= 2 && !strcmp(argv[1], "route")) {
        parse(argc, argv, 0, &options);
        return route(&options, parent);
    }
    if (argc >= 2 && !strcmp(argv[1], "relay")) {
        parse(argc, argv, 1, &options);
        return relay(&options, parent);
    }
    fail("usage: netsetup route|relay OPTION...");
    return 1;
}
