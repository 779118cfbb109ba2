/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* What every harness shares: libFuzzer's entry points, declared so that
 * -Wmissing-prototypes holds, and a check that stays on in every build. */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding: say which one, then abort(), which
 * libFuzzer reports as a crash and saves the input for. */
#define fuzz_check(cond)                                                        \
        do {                                                                    \
                if (!(cond)) {                                                  \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n",        \
                                __FILE__, __LINE__, #cond);                     \
                        abort();                                                \
                }                                                               \
        } while (0)

/* True when [p, p + n) lies within [base, base + size). */
static inline int fuzz_within(const void *p, size_t n, const void *base, size_t size) {
        uintptr_t q = (uintptr_t) p, b = (uintptr_t) base;
        return q >= b && q - b <= size && n <= size - (q - b);
}
