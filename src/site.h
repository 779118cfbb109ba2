/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdatomic.h>

#include "config.h"

/* One loaded configuration together with what is opened from it (the
 * document root). Reference-counted so that a reload can swap in a new Site
 * while requests still finish on the old one: each request takes a
 * reference for as long as it reads settings, so it sees one whole
 * configuration, never half of each. */

typedef struct Site {
        Config config;
        int root_fd; /* O_PATH directory: openat2() anchors here */
        atomic_uint n_refs;
} Site;

/* Copies config and opens its root. Returns 0 or -errno. */
int site_new(const Config *config, Site **ret);

#define SITE_ERROR_MAX 512

/* Loads and validates the file at path and opens its root. On failure
 * returns -errno and writes one line for the log to error:
 * "FILE:LINE: section.key: message" (or "FILE: message"). */
int site_load(const char *path, Site **ret, char error[static SITE_ERROR_MAX]);

Site *site_ref(Site *site);

/* Drops a reference, freeing on the last. Accepts NULL; returns NULL. */
Site *site_unref(Site *site);
