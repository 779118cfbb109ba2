/* SPDX-License-Identifier: MIT */
/*
 * file_open_beneath() against a real tree on disk. One table of request
 * paths; each row is run twice, as its own cmocka test: once with
 * openat2(RESOLVE_BENEATH) serving and once with the walk (chosen with
 * file_set_resolver()). Both are held to the same expectation. A row where
 * the two legitimately differ says so: it carries a second expectation for
 * the walk and the reason.
 *
 * The tree, in a mkdtemp() directory:
 *   outside/   a sibling of the root, holding SECRET; never to be served
 *   root/      the document root, built from `nodes` and make_generated()
 *
 * Checked for every row, besides its own expectation: a descriptor returned
 * is close-on-exec, open for reading and not O_PATH, and *ret_st describes
 * it; a failure leaves *ret_st as it was; no row leaks a descriptor; no row
 * blocks (an alarm interrupts a lookup that does, as the open of a FIFO
 * without O_NONBLOCK would, and the row fails with EINTR); no row opens a
 * FIFO or a device node of the tree (inotify reports every open() of one,
 * and none for an O_PATH lookup, which opens nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "macro.h"

#define SECRET "OUTSIDE-THE-ROOT"
#define TOP_TXT "inside top"
#define SUB_TXT "inside sub"
#define DEEP_TXT "inside deep"
#define LONGEST_TXT "longest name"
#define FAR_TXT "far down"
#define SWAP_TXT "swapped"

#define ALARM_SEC 10 /* far more than any lookup takes: a row that long hangs */

/* ---- the tree ---------------------------------------------------------- */

typedef enum NodeKind {
        NODE_DIR,
        NODE_FILE,    /* data: its contents */
        NODE_LINK,    /* data: the target, as written */
        NODE_ABSLINK, /* data: a path below the root, made absolute */
        NODE_FIFO,
        NODE_SOCKET,
        NODE_DEVICE,  /* /dev/null's numbers; skipped where mknod is refused */
} NodeKind;

typedef struct Node {
        NodeKind kind;
        const char *path; /* below the mkdtemp() directory */
        const char *data;
} Node;

/* "./" this many times, then "top.txt", is PATH_MAX - 1 bytes. */
#define N_DOT_SLASH 2044
_Static_assert(2 * N_DOT_SLASH + sizeof("top.txt") == PATH_MAX, "N_DOT_SLASH");

/* Names and targets too long to spell here; make_names() fills them. */
static char name_longest[NAME_MAX + 1];    /* NAME_MAX bytes: allowed */
static char name_over[NAME_MAX + 2];       /* NAME_MAX + 1 bytes */
static char node_longest[NAME_MAX + 8];    /* "root/" name_longest */
static char target_long[PATH_MAX];         /* "./" x N_DOT_SLASH "sub": 4091 bytes */

static const Node nodes[] = {
        { NODE_DIR, "outside", NULL },
        { NODE_FILE, "outside/secret", SECRET },
        { NODE_DIR, "root", NULL },
        { NODE_FILE, "root/top.txt", TOP_TXT },
        { NODE_DIR, "root/sub", NULL },
        { NODE_FILE, "root/sub/f.txt", SUB_TXT },
        { NODE_DIR, "root/sub/deep", NULL },
        { NODE_FILE, "root/sub/deep/g.txt", DEEP_TXT },
        { NODE_FILE, node_longest, LONGEST_TXT },

        /* relative symlinks that stay inside */
        { NODE_LINK, "root/l_same", "top.txt" },
        { NODE_LINK, "root/sub/l_up", "../top.txt" },
        { NODE_LINK, "root/l_dir", "sub" },
        { NODE_LINK, "root/l_dir_slash", "sub/" },
        { NODE_LINK, "root/l_dot", "./sub/./f.txt" },
        { NODE_LINK, "root/l_double_slash", "sub//f.txt" },
        { NODE_LINK, "root/sub/l_updown", "../sub/../sub/f.txt" },
        { NODE_LINK, "root/sub/l_selfdir", "." },
        { NODE_LINK, "root/l_chain", "l_same" },
        { NODE_LINK, "root/l_chain_dir", "l_dir" },
        { NODE_LINK, "root/sub/l_dotdot", ".." },
        { NODE_LINK, "root/l_deep", "sub/deep" },
        { NODE_LINK, "root/l_file_slash", "top.txt/" },
        { NODE_LINK, "root/l_long", target_long },

        /* symlinks that leave, however they are spelled */
        { NODE_LINK, "root/l_out", "../outside/secret" },
        { NODE_LINK, "root/l_out_in", "../root/top.txt" },
        { NODE_LINK, "root/sub/l_out_up2", "../../outside/secret" },
        { NODE_LINK, "root/l_out_dir", "../outside" },
        { NODE_LINK, "root/sub/l_via_out", "../l_out" },
        { NODE_LINK, "root/l_climb", "../../../../../../../../../../etc/passwd" },
        { NODE_LINK, "root/l_root_parent", ".." },
        { NODE_ABSLINK, "root/l_abs_in", "top.txt" },
        { NODE_ABSLINK, "root/l_abs_root", "" },
        { NODE_LINK, "root/l_abs_slash", "/" },
        { NODE_LINK, "root/l_abs_etc", "/etc/passwd" },
        { NODE_LINK, "root/l_proc", "/proc/self/root/etc/passwd" },

        /* loops, dangling links, overlong targets */
        { NODE_LINK, "root/self", "self" },
        { NODE_LINK, "root/loop_a", "loop_b" },
        { NODE_LINK, "root/loop_b", "loop_a" },
        { NODE_LINK, "root/dangling", "nowhere" },
        { NODE_LINK, "root/l_dangling_out", "../outside/nowhere" },
        { NODE_LINK, "root/l_name_over", name_over },

        /* neither a regular file nor a directory */
        { NODE_FIFO, "root/fifo", NULL },
        { NODE_LINK, "root/l_fifo", "fifo" },
        { NODE_FIFO, "root/sub/fifo", NULL },
        { NODE_SOCKET, "root/sock", NULL },
        { NODE_DEVICE, "root/null", NULL },
        { NODE_LINK, "root/l_null", "null" },

        /* a file and a FIFO that run_swap() makes trade places */
        { NODE_FILE, "root/swap", SWAP_TXT },
        { NODE_FIFO, "root/swap_fifo", NULL },
};

/* The symlink chains: cN_0 -> top.txt, cN_i -> cN_(i-1), requested as the
 * last link, so that N links are followed. */
static const unsigned chain_lengths[] = { FILE_MAX_SYMLINKS, FILE_MAX_SYMLINKS + 1 };
_Static_assert(FILE_MAX_SYMLINKS == 40, "the rows name /c40_39 and /c41_40");

/* Two chains of real directories with names of FAR_NAME_LEN bytes, joined
 * by symlinks, so that the directories a lookup descends into add up to
 * more than PATH_MAX though neither the request nor either target is near
 * it (8 x 251 + 9 x 251 bytes):
 *   root/l_far_a -> a/a/.../a (FAR_A_LEVELS of them)
 *   root/a/.../a/l_far_b -> b/b/.../b/f (FAR_B_LEVELS directories, then f) */
#define FAR_NAME_LEN 250
#define FAR_A_LEVELS 8
#define FAR_B_LEVELS 9

/* Request paths too long to spell here. */
static char path_longest[NAME_MAX + 2];          /* "/" name_longest */
static char path_name_over[NAME_MAX + 3];        /* "/" name_over */
static char path_sub_name_over[NAME_MAX + 7];    /* "/sub/" name_over */
static char path_missing_name_over[NAME_MAX + 11]; /* "/missing/" name_over */
static char path_longest_missing[NAME_MAX + 2];  /* "/" NAME_MAX bytes, none such */
static char path_max[PATH_MAX + 1];  /* "/" + 4095 bytes: "./" x N_DOT_SLASH "top.txt" */
static char path_over[PATH_MAX + 2]; /* "/" + 4096 bytes: "./" x N_DOT_SLASH "/top.txt" */

static void fill(char *buf, char c, size_t n) {
        memset(buf, c, n);
        buf[n] = '\0';
}

static void repeat_dot_slash(char *buf, unsigned n, const char *tail) {
        for (unsigned i = 0; i < n; i++)
                memcpy(buf + 2 * i, "./", 2);
        strcpy(buf + 2 * n, tail);
}

static void make_names(void) {
        fill(name_longest, 'n', NAME_MAX);
        fill(name_over, 'o', NAME_MAX + 1);
        fill(path_longest_missing + 1, 'm', NAME_MAX);
        path_longest_missing[0] = '/';
        (void) snprintf(node_longest, sizeof(node_longest), "root/%s", name_longest);
        (void) snprintf(path_longest, sizeof(path_longest), "/%s", name_longest);
        (void) snprintf(path_name_over, sizeof(path_name_over), "/%s", name_over);
        (void) snprintf(path_sub_name_over, sizeof(path_sub_name_over), "/sub/%s", name_over);
        (void) snprintf(path_missing_name_over, sizeof(path_missing_name_over), "/missing/%s", name_over);
        repeat_dot_slash(target_long, N_DOT_SLASH, "sub");
        path_max[0] = '/';
        repeat_dot_slash(path_max + 1, N_DOT_SLASH, "top.txt");
        path_over[0] = '/';
        repeat_dot_slash(path_over + 1, N_DOT_SLASH, "/top.txt");
}

static struct {
        char top[PATH_MAX];  /* the mkdtemp() directory */
        char root[PATH_MAX]; /* top/root */
        int root_fd;         /* from file_open_root() */
        int watch_fd;        /* inotify: IN_OPEN of each FIFO and device node */
        bool have_device;
} h = {
        .root_fd = -EBADF,
        .watch_fd = -EBADF,
};

static int make_node(int top_fd, const Node *n) {
        char target[PATH_MAX];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        size_t len;

        switch (n->kind) {
        case NODE_DIR:
                return mkdirat(top_fd, n->path, 0755) < 0 ? -errno : 0;
        case NODE_FILE:
                fd = openat(top_fd, n->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                len = strlen(n->data);
                if (fd < 0 || write(fd, n->data, len) != (ssize_t) len)
                        return -EIO;
                return 0;
        case NODE_LINK:
                return symlinkat(n->data, top_fd, n->path) < 0 ? -errno : 0;
        case NODE_ABSLINK:
                if (snprintf(target, sizeof(target), "%s%s%s", h.root, n->data[0] ? "/" : "", n->data) >=
                    (int) sizeof(target))
                        return -ENAMETOOLONG;
                return symlinkat(target, top_fd, n->path) < 0 ? -errno : 0;
        case NODE_FIFO:
                return mkfifoat(top_fd, n->path, 0644) < 0 ? -errno : 0;
        case NODE_SOCKET:
                if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", h.top, n->path) >=
                    (int) sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return -errno;
                return 0; /* the socket file stays after the socket is closed */
        case NODE_DEVICE:
                /* Refused without CAP_MKNOD (a container): the row is skipped. */
                h.have_device = mknodat(top_fd, n->path, S_IFCHR | 0644, makedev(1, 3)) >= 0;
                return 0;
        }
        return -EINVAL;
}

static int make_chain(int root_fd, unsigned n) {
        char name[32], previous[32] = "top.txt";

        for (unsigned i = 0; i < n; i++) {
                (void) snprintf(name, sizeof(name), "c%u_%u", n, i);
                if (symlinkat(previous, root_fd, name) < 0)
                        return -errno;
                strcpy(previous, name);
        }
        return 0;
}

/* Makes `levels` directories called `name`, each in the last, below dir_fd;
 * returns an fd of the deepest, or -errno. Writes the relative path
 * "name/name/..." to ret_path. */
static int make_dir_chain(int dir_fd, const char *name, unsigned levels, char *ret_path) {
        int fd = dir_fd;

        ret_path[0] = '\0';
        for (unsigned i = 0; i < levels; i++) {
                int next = mkdirat(fd, name, 0755) < 0 ? -1 : openat(fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd != dir_fd)
                        (void) safe_close(fd); /* keeps errno */
                if (next < 0)
                        return -errno;
                fd = next;
                if (i > 0)
                        strcat(ret_path, "/");
                strcat(ret_path, name);
        }
        return fd;
}

static int make_far(int root_fd) {
        char a[FAR_NAME_LEN + 1], b[FAR_NAME_LEN + 1], path[PATH_MAX];
        _cleanup_close_ int a_fd = -EBADF, b_fd = -EBADF, f_fd = -EBADF;

        fill(a, 'a', FAR_NAME_LEN);
        fill(b, 'b', FAR_NAME_LEN);
        a_fd = make_dir_chain(root_fd, a, FAR_A_LEVELS, path);
        if (a_fd < 0)
                return a_fd;
        if (symlinkat(path, root_fd, "l_far_a") < 0)
                return -errno;
        b_fd = make_dir_chain(a_fd, b, FAR_B_LEVELS, path);
        if (b_fd < 0)
                return b_fd;
        strcat(path, "/f");
        if (symlinkat(path, a_fd, "l_far_b") < 0)
                return -errno;
        f_fd = openat(b_fd, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f_fd < 0 || write(f_fd, FAR_TXT, strlen(FAR_TXT)) != (ssize_t) strlen(FAR_TXT))
                return -EIO;
        return 0;
}

static int make_generated(void) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(chain_lengths); i++) {
                r = make_chain(h.root_fd, chain_lengths[i]);
                if (r < 0)
                        return r;
        }
        return make_far(h.root_fd);
}

/* Empties the directory dir_fd (owned), by descriptors all the way, since
 * the far chains are deeper than PATH_MAX can name. */
static void remove_children(int dir_fd) {
        DIR *d = fdopendir(dir_fd);
        struct dirent *de;
        bool removed = true;

        if (!d) {
                (void) close(dir_fd);
                return;
        }
        /* Again until a pass finds nothing: removing entries while reading
         * the directory may hide some from this pass. */
        while (removed) {
                removed = false;
                rewinddir(d);
                while ((de = readdir(d))) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        int fd = openat(dirfd(d), de->d_name,
                                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        if (fd >= 0) {
                                remove_children(fd);
                                removed |= unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) >= 0;
                        } else
                                removed |= unlinkat(dirfd(d), de->d_name, 0) >= 0;
                }
        }
        (void) closedir(d);
}

static void remove_tree(void) {
        h.root_fd = safe_close(h.root_fd);
        h.watch_fd = safe_close(h.watch_fd);
        if (!h.top[0])
                return;
        int fd = open(h.top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                remove_children(fd);
        (void) rmdir(h.top);
        h.top[0] = '\0';
}

/* Whether anything opened a watched node since the last call. */
static bool special_opened(void) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool opened = false;
        ssize_t n;

        while ((n = read(h.watch_fd, buf, sizeof(buf))) > 0)
                for (ssize_t off = 0; off < n;) {
                        const struct inotify_event *e = (const struct inotify_event *) (buf + off);
                        opened |= (e->mask & IN_OPEN) != 0;
                        off += (ssize_t) (sizeof(*e) + e->len);
                }
        return opened;
}

/* Watches every FIFO and device node for IN_OPEN, and checks that the
 * watch sees an open() of one: else "never opened" would prove nothing. */
static int watch_special(int top_fd) {
        char path[PATH_MAX];

        h.watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (h.watch_fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                if (nodes[i].kind != NODE_FIFO && !(nodes[i].kind == NODE_DEVICE && h.have_device))
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", h.top, nodes[i].path) >= (int) sizeof(path))
                        return -ENAMETOOLONG;
                if (inotify_add_watch(h.watch_fd, path, IN_OPEN) < 0)
                        return -errno;
        }
        int fd = openat(top_fd, "root/fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) close(fd);
        return special_opened() ? 0 : -EIO;
}

static int build_tree(void) {
        char dir[] = "/tmp/test-file-XXXXXX";
        _cleanup_close_ int top_fd = -EBADF;
        int r;

        make_names();
        if (!mkdtemp(dir))
                return -errno;
        if (!realpath(dir, h.top)) {
                (void) rmdir(dir);
                return -errno;
        }
        if (snprintf(h.root, sizeof(h.root), "%s/root", h.top) >= (int) sizeof(h.root))
                return -ENAMETOOLONG;
        top_fd = open(h.top, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (top_fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                r = make_node(top_fd, &nodes[i]);
                if (r < 0) {
                        print_error("creating %.60s: %s\n", nodes[i].path, strerror(-r));
                        return r;
                }
        }
        h.root_fd = file_open_root(h.root);
        if (h.root_fd < 0)
                return h.root_fd;
        r = watch_special(top_fd);
        if (r < 0)
                return r;
        return make_generated();
}

static int teardown_tree(void **state) {
        (void) state;
        remove_tree();
        file_set_resolver(FILE_RESOLVE_OPENAT2);
        return 0;
}

/* cmocka runs no group teardown after a failed setup: clean up here. */
static int setup_tree(FileResolver resolver) {
        int r = build_tree();

        if (r < 0)
                print_error("building the tree: %s\n", strerror(-r));
        file_set_resolver(resolver);
        if (r < 0 || file_get_resolver() != resolver) {
                (void) teardown_tree(NULL);
                return -1;
        }
        return 0;
}

static int setup_openat2(void **state) {
        (void) state;
        return setup_tree(FILE_RESOLVE_OPENAT2);
}

static int setup_walk(void **state) {
        (void) state;
        return setup_tree(FILE_RESOLVE_WALK);
}

/* ---- the table ---------------------------------------------------------- */

typedef struct Expect {
        int error;           /* a negative errno; 0: opened, as follows */
        const char *content; /* a regular file holding exactly this */
        const char *dir;     /* or this directory, below the root ("." for it) */
} Expect;

#define OPENS(c) { .content = (c) }
#define IS_DIR(d) { .dir = (d) }
#define FAILS(e) { .error = (e) }

typedef struct Case {
        const char *name;
        const char *path;
        Expect expect;          /* from both resolvers, unless: */
        const char *walk_differs; /* why the walk does not meet `expect`; then */
        Expect walk;            /* is what it gives */
        bool needs_device;
} Case;

static Case cases[] = {
        /* Plain files and directories */
        { .name = "a file in the root", .path = "/top.txt", .expect = OPENS(TOP_TXT) },
        { .name = "a file in a directory", .path = "/sub/f.txt", .expect = OPENS(SUB_TXT) },
        { .name = "a file two directories down", .path = "/sub/deep/g.txt", .expect = OPENS(DEEP_TXT) },
        { .name = "\"/\" is the root directory", .path = "/", .expect = IS_DIR(".") },
        { .name = "\"\" is the root directory", .path = "", .expect = IS_DIR(".") },
        { .name = "a directory", .path = "/sub", .expect = IS_DIR("sub") },
        { .name = "a directory with a trailing slash", .path = "/sub/", .expect = IS_DIR("sub") },
        { .name = "\"//\" and \"/./\" inside a path", .path = "//sub//./f.txt", .expect = OPENS(SUB_TXT) },
        { .name = "a name of NAME_MAX bytes", .path = path_longest, .expect = OPENS(LONGEST_TXT) },

        /* Not there */
        { .name = "a missing file", .path = "/missing", .expect = FAILS(-ENOENT) },
        { .name = "a missing directory", .path = "/missing/x", .expect = FAILS(-ENOENT) },
        { .name = "a missing file in a directory", .path = "/sub/missing", .expect = FAILS(-ENOENT) },
        { .name = "a missing name of NAME_MAX bytes", .path = path_longest_missing, .expect = FAILS(-ENOENT) },
        { .name = "a file used as a directory", .path = "/top.txt/x", .expect = FAILS(-ENOTDIR) },
        { .name = "a file with a trailing slash", .path = "/top.txt/", .expect = FAILS(-ENOTDIR) },
        { .name = "a file followed by \"/.\"", .path = "/top.txt/.", .expect = FAILS(-ENOTDIR) },
        { .name = "a file followed by \"/..\"", .path = "/top.txt/..", .expect = FAILS(-ENOTDIR) },
        { .name = "a name over NAME_MAX", .path = path_name_over, .expect = FAILS(-ENAMETOOLONG) },
        { .name = "a name over NAME_MAX in a directory", .path = path_sub_name_over, .expect = FAILS(-ENAMETOOLONG) },
        { .name = "a name over NAME_MAX below a missing directory", .path = path_missing_name_over,
          .expect = FAILS(-ENOENT) },
        { .name = "a path of PATH_MAX - 1 bytes after the leading slash", .path = path_max, .expect = OPENS(TOP_TXT) },
        { .name = "a path of PATH_MAX bytes after the leading slash", .path = path_over,
          .expect = FAILS(-ENAMETOOLONG) },

        /* ".." in the request itself */
        { .name = "\"..\" that stays inside", .path = "/sub/../top.txt", .expect = OPENS(TOP_TXT) },
        { .name = "\"..\" back to the root", .path = "/sub/..", .expect = IS_DIR(".") },
        { .name = "\"..\" of the root", .path = "/..", .expect = FAILS(-EXDEV) },
        { .name = "\"..\" of the root and back in", .path = "/../root/top.txt", .expect = FAILS(-EXDEV) },
        { .name = "\"..\" twice from a directory", .path = "/sub/../../outside/secret", .expect = FAILS(-EXDEV) },

        /* Relative symlinks that stay inside */
        { .name = "a symlink in the same directory", .path = "/l_same", .expect = OPENS(TOP_TXT) },
        { .name = "a symlink up one directory", .path = "/sub/l_up", .expect = OPENS(TOP_TXT) },
        { .name = "a symlink to a directory, then a file", .path = "/l_dir/f.txt", .expect = OPENS(SUB_TXT) },
        { .name = "a symlink to a directory, last", .path = "/l_dir", .expect = IS_DIR("sub") },
        { .name = "a symlink to a directory, trailing slash", .path = "/l_dir/", .expect = IS_DIR("sub") },
        { .name = "a symlink to \"sub/\", then a file", .path = "/l_dir_slash/f.txt", .expect = OPENS(SUB_TXT) },
        { .name = "a symlink to \"sub/\", last", .path = "/l_dir_slash", .expect = IS_DIR("sub") },
        { .name = "a symlink through \"./\"", .path = "/l_dot", .expect = OPENS(SUB_TXT) },
        { .name = "a symlink through \"//\"", .path = "/l_double_slash", .expect = OPENS(SUB_TXT) },
        { .name = "a symlink up and down twice", .path = "/sub/l_updown", .expect = OPENS(SUB_TXT) },
        { .name = "a symlink to \".\"", .path = "/sub/l_selfdir/f.txt", .expect = OPENS(SUB_TXT) },
        { .name = "a chain of two symlinks", .path = "/l_chain", .expect = OPENS(TOP_TXT) },
        { .name = "a chain of two symlinks to a directory", .path = "/l_chain_dir/f.txt", .expect = OPENS(SUB_TXT) },
        { .name = "a symlink to \"..\" from a directory, then a file", .path = "/sub/l_dotdot/top.txt",
          .expect = OPENS(TOP_TXT) },
        { .name = "a symlink to \"..\" from a directory, last", .path = "/sub/l_dotdot", .expect = IS_DIR(".") },
        { .name = "\"..\" after a symlink is the target's parent", .path = "/l_deep/../f.txt",
          .expect = OPENS(SUB_TXT) },
        { .name = "\"..\" after a symlink to \"..\" leaves", .path = "/sub/l_dotdot/..", .expect = FAILS(-EXDEV) },
        { .name = "40 chained symlinks are followed", .path = "/c40_39", .expect = OPENS(TOP_TXT) },
        { .name = "a symlink of 4091 bytes, last", .path = "/l_long", .expect = IS_DIR("sub") },
        { .name = "a symlink of 4091 bytes, then a file", .path = "/l_long/f.txt", .expect = OPENS(SUB_TXT),
          .walk_differs = "the walk splices the target before the rest of the path in one PATH_MAX buffer",
          .walk = FAILS(-ENAMETOOLONG) },
        { .name = "symlinked directories deeper than PATH_MAX", .path = "/l_far_a/l_far_b", .expect = OPENS(FAR_TXT),
          .walk_differs = "the walk keeps the directories walked as one path of at most PATH_MAX",
          .walk = FAILS(-ENAMETOOLONG) },

        /* Symlinks to files used as directories */
        { .name = "a symlink to a file, then a name", .path = "/l_same/x", .expect = FAILS(-ENOTDIR) },
        { .name = "a symlink to a file, trailing slash", .path = "/l_same/", .expect = FAILS(-ENOTDIR) },
        { .name = "a symlink to \"file/\"", .path = "/l_file_slash", .expect = FAILS(-ENOTDIR) },

        /* Symlinks that leave the root, however they are spelled */
        { .name = "a symlink to ../outside/secret", .path = "/l_out", .expect = FAILS(-EXDEV) },
        { .name = "a symlink out and back in", .path = "/l_out_in", .expect = FAILS(-EXDEV) },
        { .name = "a symlink up two from a directory", .path = "/sub/l_out_up2", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to ../outside, then a file", .path = "/l_out_dir/secret", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to ../outside, trailing slash", .path = "/l_out_dir/", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to a symlink that leaves", .path = "/sub/l_via_out", .expect = FAILS(-EXDEV) },
        { .name = "a symlink ten levels up", .path = "/l_climb", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to \"..\" of the root, last", .path = "/l_root_parent", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to \"..\" of the root, then a file", .path = "/l_root_parent/outside/secret",
          .expect = FAILS(-EXDEV) },
        { .name = "an absolute symlink to a file inside", .path = "/l_abs_in", .expect = FAILS(-EXDEV) },
        { .name = "an absolute symlink to the root, then a file", .path = "/l_abs_root/top.txt",
          .expect = FAILS(-EXDEV) },
        { .name = "a symlink to \"/\"", .path = "/l_abs_slash", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to \"/\", then a path", .path = "/l_abs_slash/etc/passwd", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to /etc/passwd", .path = "/l_abs_etc", .expect = FAILS(-EXDEV) },
        { .name = "a symlink to /proc/self/root/etc/passwd", .path = "/l_proc", .expect = FAILS(-EXDEV) },
        { .name = "a dangling symlink that leaves", .path = "/l_dangling_out", .expect = FAILS(-EXDEV) },

        /* Loops and dangling symlinks */
        { .name = "41 chained symlinks are a loop", .path = "/c41_40", .expect = FAILS(-ELOOP) },
        { .name = "a symlink to itself", .path = "/self", .expect = FAILS(-ELOOP) },
        { .name = "a symlink to itself, then a name", .path = "/self/x", .expect = FAILS(-ELOOP) },
        { .name = "two symlinks to each other", .path = "/loop_a", .expect = FAILS(-ELOOP) },
        { .name = "a dangling symlink", .path = "/dangling", .expect = FAILS(-ENOENT) },
        { .name = "a dangling symlink, then a name", .path = "/dangling/x", .expect = FAILS(-ENOENT) },
        { .name = "a symlink to a name over NAME_MAX", .path = "/l_name_over", .expect = FAILS(-ENAMETOOLONG) },

        /* Neither a regular file nor a directory */
        { .name = "a FIFO, without blocking", .path = "/fifo", .expect = FAILS(-EPERM) },
        { .name = "a symlink to a FIFO", .path = "/l_fifo", .expect = FAILS(-EPERM) },
        { .name = "a FIFO with a trailing slash", .path = "/fifo/", .expect = FAILS(-ENOTDIR) },
        { .name = "a unix socket", .path = "/sock", .expect = FAILS(-EPERM) },
        { .name = "a unix socket, then a name", .path = "/sock/x", .expect = FAILS(-ENOTDIR) },
        { .name = "a FIFO in a directory", .path = "/sub/fifo", .expect = FAILS(-EPERM) },
        { .name = "a FIFO through a symlinked directory", .path = "/l_dir/fifo", .expect = FAILS(-EPERM) },
        { .name = "a character device", .path = "/null", .expect = FAILS(-EPERM), .needs_device = true },
        { .name = "a symlink to a character device", .path = "/l_null", .expect = FAILS(-EPERM),
          .needs_device = true },
};

/* ---- running a row ------------------------------------------------------- */

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        (void) closedir(d);
        return n;
}

static const char *errno_name(int r) {
        const char *s = r < 0 ? strerrorname_np(-r) : NULL;
        return s ? s : "?";
}

static void check_fd(const Case *c, int fd, const struct stat *st) {
        struct stat real;
        int fd_flags = fcntl(fd, F_GETFD), fl_flags = fcntl(fd, F_GETFL);

        if (fd_flags < 0 || !(fd_flags & FD_CLOEXEC))
                fail_msg("%s: fd is not close-on-exec", c->name);
        if (fl_flags < 0 || (fl_flags & O_ACCMODE) != O_RDONLY || (fl_flags & O_PATH))
                fail_msg("%s: fd flags %#x, expected O_RDONLY without O_PATH", c->name, (unsigned) fl_flags);
        assert_int_equal(fstat(fd, &real), 0);
        if (real.st_dev != st->st_dev || real.st_ino != st->st_ino || real.st_mode != st->st_mode)
                fail_msg("%s: *ret_st does not describe the fd", c->name);
}

static void check_content(const Case *c, int fd, const struct stat *st, const char *want) {
        char buf[256];
        size_t len = strlen(want);

        if (!S_ISREG(st->st_mode))
                fail_msg("%s: mode %#o, expected a regular file", c->name, (unsigned) st->st_mode);
        ssize_t n = pread(fd, buf, sizeof(buf), 0);
        if (n != (ssize_t) len || memcmp(buf, want, len) != 0 || st->st_size != (off_t) len)
                fail_msg("%s: read '%.*s', expected '%s'", c->name, (int) MAX(n, 0), buf, want);
}

static void check_dir(const Case *c, const struct stat *st, const char *want) {
        struct stat dir;

        if (!S_ISDIR(st->st_mode))
                fail_msg("%s: mode %#o, expected a directory", c->name, (unsigned) st->st_mode);
        assert_int_equal(fstatat(h.root_fd, want, &dir, AT_SYMLINK_NOFOLLOW), 0);
        if (dir.st_dev != st->st_dev || dir.st_ino != st->st_ino)
                fail_msg("%s: opened a directory other than \"%s\"", c->name, want);
}

static void run_case(const Case *c, FileResolver resolver) {
        const Expect *e = resolver == FILE_RESOLVE_WALK && c->walk_differs ? &c->walk : &c->expect;
        struct stat st, untouched;

        if (c->needs_device && !h.have_device) {
                print_message("%s: mknod refused here, skipped\n", c->name);
                skip();
        }
        if (resolver == FILE_RESOLVE_WALK && c->walk_differs)
                print_message("%s: the walk differs: %s\n", c->name, c->walk_differs);

        memset(&st, 0xa5, sizeof(st));
        memcpy(&untouched, &st, sizeof(st));
        unsigned n_fds = count_fds();

        alarm(ALARM_SEC); /* on_alarm() makes a lookup that blocks fail with EINTR */
        _cleanup_close_ int fd = file_open_beneath(h.root_fd, c->path, &st);
        alarm(0);

        if (e->error) {
                if (fd != e->error)
                        fail_msg("%s (%.60s): got %d (%s), expected -%s%s", c->name, c->path, fd,
                                 fd < 0 ? errno_name(fd) : "opened", errno_name(e->error),
                                 fd == -EINTR ? ": the lookup blocked" : "");
                if (memcmp(&st, &untouched, sizeof(st)) != 0)
                        fail_msg("%s: *ret_st written on failure", c->name);
        } else {
                if (fd < 0)
                        fail_msg("%s (%.60s): got -%s, expected it opened%s", c->name, c->path, errno_name(fd),
                                 fd == -EINTR ? ": the lookup blocked" : "");
                check_fd(c, fd, &st);
                if (e->content)
                        check_content(c, fd, &st, e->content);
                else
                        check_dir(c, &st, e->dir);
        }
        fd = safe_close(fd);
        if (count_fds() != n_fds)
                fail_msg("%s: %u descriptors open before, %u after", c->name, n_fds, count_fds());
        if (special_opened())
                fail_msg("%s: a FIFO or a device node was opened", c->name);
}

/* Without SA_RESTART, so that it interrupts a blocked open() rather than
 * ending the run, which would leave the tree behind. */
static void on_alarm(int sig) {
        (void) sig;
}

static void test_openat2(void **state) {
        run_case(*state, FILE_RESOLVE_OPENAT2);
}

static void test_walk(void **state) {
        run_case(*state, FILE_RESOLVE_WALK);
}

/* ---- a FIFO swapped in for a file ----------------------------------------- */

#define SWAP_LOOKUPS 20000
#define SWAP_MAX_USEC (10 * 1000000LL) /* more lookups, up to this, until both names were met */

/* Makes root/swap and root/swap_fifo trade places until killed. */
static _Noreturn void swap_until_killed(void) {
        int top_fd = open(h.top, O_PATH | O_DIRECTORY | O_CLOEXEC);

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
                (void) renameat2(top_fd, "root/swap", top_fd, "root/swap_fifo", RENAME_EXCHANGE);
}

static long long usec_now(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Whichever "/swap" names when it is looked up, the file is served or the
 * FIFO refused, and the FIFO is never opened: not even when the swap falls
 * between the lookup and the open, where opening the name again would meet
 * the FIFO. */
static void run_swap(FileResolver resolver) {
        unsigned served = 0, refused = 0, other = 0;
        int unexpected = 0;
        long long deadline = usec_now() + SWAP_MAX_USEC;

        assert_int_equal(file_get_resolver(), resolver);
        (void) special_opened();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                swap_until_killed();
        for (unsigned i = 0; (i < SWAP_LOOKUPS || !served || !refused) && usec_now() < deadline; i++) {
                struct stat st;
                int fd = file_open_beneath(h.root_fd, "/swap", &st);
                if (fd >= 0 && S_ISREG(st.st_mode) && st.st_size == (off_t) strlen(SWAP_TXT))
                        served++;
                else if (fd == -EPERM)
                        refused++;
                else {
                        other++;
                        unexpected = fd;
                }
                (void) safe_close(fd);
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);

        print_message("%u lookups found the file, %u the FIFO\n", served, refused);
        if (special_opened())
                fail_msg("the FIFO was opened");
        if (other > 0)
                fail_msg("%u lookups gave neither the file nor -EPERM, one %d (%s)", other, unexpected,
                         unexpected < 0 ? errno_name(unexpected) : "opened");
        if (!served || !refused)
                fail_msg("the swap never raced the lookups");
}

static void test_swap_openat2(void **state) {
        (void) state;
        run_swap(FILE_RESOLVE_OPENAT2);
}

static void test_swap_walk(void **state) {
        (void) state;
        run_swap(FILE_RESOLVE_WALK);
}

/* ---- the rest of the module ---------------------------------------------- */

static void test_probe_finds_openat2(void **state) {
        (void) state;
        _cleanup_close_ int root_fd = file_open_root("/");
        int error = -1;

        assert_true(root_fd >= 0);
        unsigned n_fds = count_fds();
        assert_int_equal(file_probe_resolver(root_fd, &error), FILE_RESOLVE_OPENAT2);
        assert_int_equal(error, 0);
        assert_int_equal(count_fds(), n_fds);
}

static void test_probe_finds_proc(void **state) {
        (void) state;
        _cleanup_close_ int root_fd = file_open_root("/");

        assert_true(root_fd >= 0);
        unsigned n_fds = count_fds();
        assert_int_equal(file_probe_reopen(root_fd), 0);
        assert_int_equal(count_fds(), n_fds);
}

static void test_open_root(void **state) {
        (void) state;
        _cleanup_close_ int fd = file_open_root("/");

        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(fd, F_GETFL) & O_PATH);
        assert_int_equal(file_open_root("/nonexistent-webpoold-root"), -ENOENT);
        assert_int_equal(file_open_root("/dev/null"), -ENOTDIR);
}

static void test_resolver_selection(void **state) {
        (void) state;
        const char *openat2_name = file_resolver_to_string(FILE_RESOLVE_OPENAT2);
        const char *walk_name = file_resolver_to_string(FILE_RESOLVE_WALK);

        assert_int_equal(file_get_resolver(), FILE_RESOLVE_OPENAT2); /* the default */
        file_set_resolver(FILE_RESOLVE_WALK);
        assert_int_equal(file_get_resolver(), FILE_RESOLVE_WALK);
        file_set_resolver(FILE_RESOLVE_OPENAT2);
        assert_int_equal(file_get_resolver(), FILE_RESOLVE_OPENAT2);
        assert_non_null(strstr(openat2_name, "openat2"));
        assert_non_null(strstr(walk_name, "O_NOFOLLOW"));
}

static void test_status_for_error(void **state) {
        (void) state;
        static const struct {
                int error;
                int status;
        } cases_status[] = {
                { -ENOENT, 404 }, { -ENOTDIR, 404 }, { -ENAMETOOLONG, 404 },
                { -EXDEV, 403 },  { -ELOOP, 403 },   { -EACCES, 403 },     { -EPERM, 403 },
                { -EIO, 500 },    { -EMFILE, 503 },  { -ENFILE, 503 },     { -ENOMEM, 500 },
                { -EAGAIN, 500 },
                { -EBADF, 500 },  { -ENOSYS, 500 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases_status); i++) {
                int status = file_status_for_error(cases_status[i].error);
                if (status != cases_status[i].status)
                        fail_msg("-%s: %d, expected %d", errno_name(cases_status[i].error), status,
                                 cases_status[i].status);
        }
}

#define SWAP_NAME "a FIFO swapped in for a file is never opened"

int main(void) {
        struct CMUnitTest by_openat2[ELEMENTSOF(cases) + 1], by_walk[ELEMENTSOF(cases) + 1];
        const struct CMUnitTest rest[] = {
                cmocka_unit_test(test_probe_finds_openat2),
                cmocka_unit_test(test_probe_finds_proc),
                cmocka_unit_test(test_open_root),
                cmocka_unit_test(test_resolver_selection),
                cmocka_unit_test(test_status_for_error),
        };

        assert_int_equal(sigaction(SIGALRM, &(struct sigaction) { .sa_handler = on_alarm }, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                by_openat2[i] = (struct CMUnitTest) cmocka_unit_test_prestate(test_openat2, &cases[i]);
                by_openat2[i].name = cases[i].name;
                by_walk[i] = (struct CMUnitTest) cmocka_unit_test_prestate(test_walk, &cases[i]);
                by_walk[i].name = cases[i].name;
        }
        by_openat2[ELEMENTSOF(cases)] = (struct CMUnitTest) cmocka_unit_test(test_swap_openat2);
        by_openat2[ELEMENTSOF(cases)].name = SWAP_NAME;
        by_walk[ELEMENTSOF(cases)] = (struct CMUnitTest) cmocka_unit_test(test_swap_walk);
        by_walk[ELEMENTSOF(cases)].name = SWAP_NAME;
        int failed = cmocka_run_group_tests_name("file", rest, NULL, NULL);
        failed += cmocka_run_group_tests_name("file_open_beneath: openat2(RESOLVE_BENEATH)", by_openat2,
                                              setup_openat2, teardown_tree);
        failed += cmocka_run_group_tests_name("file_open_beneath: the walk", by_walk, setup_walk, teardown_tree);
        return failed;
}
