/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static void test_str_join(void **state) {
        static const struct {
                const char *a, *b;
                size_t size;
                int ret;
                const char *out;
        } cases[] = {
                { "/dir/", "index.html", 16, 15, "/dir/index.html" },
                { "/a.css", ".br", 10, 9, "/a.css.br" },
                { "/a.css", ".br", 9, -ENAMETOOLONG, NULL }, /* no room for the NUL */
                { "", "", 1, 0, "" },
                { "", "x", 1, -ENAMETOOLONG, NULL },
        };

        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char out[32];
                memset(out, '#', sizeof(out));
                int r = str_join(out, cases[i].size, cases[i].a, cases[i].b);
                assert_int_equal(r, cases[i].ret);
                if (cases[i].out)
                        assert_string_equal(out, cases[i].out);
                else
                        assert_int_equal(out[0], '#'); /* untouched */
        }
}

static void test_proc_fd_path(void **state) {
        static const int fds[] = { 0, 7, 10, 99, 1000, 123456, INT_MAX };

        (void) state;
        for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
                char out[PROC_FD_PATH_MAX], expected[PROC_FD_PATH_MAX];
                snprintf(expected, sizeof(expected), "/proc/self/fd/%d", fds[i]);
                proc_fd_path(out, fds[i]);
                assert_string_equal(out, expected);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_str_join),
                cmocka_unit_test(test_proc_fd_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
