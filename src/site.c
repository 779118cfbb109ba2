/* SPDX-License-Identifier: MIT */
#include "site.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "macro.h"
#include <unistd.h>

int site_new(const Config *config, Site **ret) {
        Site *site = malloc(sizeof(Site));
        if (!site)
                return -ENOMEM;

        site->config = *config;
        site->root_fd = file_open_root(config->root);
        /* O_PATH opens a directory we may not search; serving from it would
         * answer 403 to everything, so refuse it now, with the reason. */
        int r = site->root_fd < 0 ? site->root_fd
                : faccessat(site->root_fd, ".", X_OK, AT_EACCESS) < 0 ? -errno : 0;
        if (r < 0) {
                (void) safe_close(site->root_fd);
                free(site);
                return r;
        }
        atomic_init(&site->n_refs, 1);
        *ret = site;
        return 0;
}

Site *site_ref(Site *site) {
        atomic_fetch_add_explicit(&site->n_refs, 1, memory_order_relaxed);
        return site;
}

Site *site_unref(Site *site) {
        if (!site)
                return NULL;
        /* acq_rel: whoever frees must see every other holder's last use. */
        if (atomic_fetch_sub_explicit(&site->n_refs, 1, memory_order_acq_rel) == 1) {
                (void) safe_close(site->root_fd);
                free(site);
        }
        return NULL;
}

static void format_config_error(const char *path, const ConfigError *e, char *out, size_t size) {
        const char *sep = e->key[0] ? ": " : "";
        if (e->line > 0)
                snprintf(out, size, "%s:%u: %s%s%s", path, e->line, e->key, sep, e->message);
        else
                snprintf(out, size, "%s: %s%s%s", path, e->key, sep, e->message);
}

int site_load(const char *path, Site **ret, char error[static SITE_ERROR_MAX]) {
        _cleanup_free_ Config *config = malloc(sizeof(Config));
        ConfigError e = {};

        if (!config) {
                snprintf(error, SITE_ERROR_MAX, "%s: out of memory", path);
                return -ENOMEM;
        }
        int r = config_load(path, config, &e);
        if (r < 0) {
                format_config_error(path, &e, error, SITE_ERROR_MAX);
                return r;
        }
        r = site_new(config, ret);
        if (r < 0)
                snprintf(error, SITE_ERROR_MAX, "%.200s: cannot open root %.200s: %s", path, config->root, strerror(-r));
        return r;
}
