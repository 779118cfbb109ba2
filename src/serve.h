/* SPDX-License-Identifier: MIT */
#pragma once

#include "conn.h"
#include "http.h"

/* Deciding what to answer: the request's target mapped beneath the root,
 * conditional requests, ranges, precompressed variants, redirects and error
 * pages. Runs on a worker inside conn_run(), with c->site held; it only
 * builds the response (conn_head_*, conn_body_*), conn.c sends it. */

/* Starts the response to a well-framed request. */
void serve_request(Conn *c, const HttpRequest *req);

/* Starts an error response: the configured 404 page, or a built-in page. */
void serve_error(Conn *c, int status);
