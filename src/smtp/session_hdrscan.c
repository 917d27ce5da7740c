/*
 * session_hdrscan.c - finds, as DATA is stored line by line, where the message's header
 * section has the landmarks that add_header's placements name: the end of the first block
 * of Received: lines, the end of the leading Received:/Resent-* lines, and the end of the
 * header section. One look at the start of each line and one at its end: the data is
 * never read twice.
 *
 * Pure: works on the struct session_hdrscan it is given and the bytes passed in; owns
 * nothing. Called by the thread that owns the session (session_data.c).
 */
#include "postern/session.h"

#include <string.h>
#include <strings.h>

/* The blocks of the header section, in the order they can follow one another; 0 is "not
 * scanning" (before DATA). */
enum { HS_RECEIVED = 1, HS_RFC, HS_OTHER, HS_BODY };

void session_hdrscan_start(struct session_hdrscan *h, int64_t received_len)
{
    memset(h, 0, sizeof *h);
    h->received_end = h->rfc_end = h->header_end = received_len;
    h->stage = HS_RECEIVED;
    h->field = HS_RECEIVED; /* ours: a continuation line at the very top extends it */
    h->line = HS_BODY;
}

/* Length of the field name of "Name: ..." (blanks allowed before the colon, as RFC 5322's
 * obsolete syntax has it), 0 when the line is no header field. */
static size_t hdrscan_name_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (unsigned char)p[i] > ' ' && (unsigned char)p[i] < 127 && p[i] != ':')
        i++;
    size_t name = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return name > 0 && i < n && p[i] == ':' ? name : 0;
}

/* The block a header field named p[0..name) opens, given the blocks already passed. */
static unsigned char hdrscan_block(const struct session_hdrscan *h, const char *p, size_t name)
{
    unsigned char block = HS_OTHER;
    if (name == 8 && strncasecmp(p, "Received", 8) == 0)
        block = HS_RECEIVED;
    else if (name >= 7 && strncasecmp(p, "Resent-", 7) == 0)
        block = HS_RFC;
    return block < h->stage ? h->stage : block; /* a block once left stays left */
}

void session_hdrscan_line_begin(struct session_hdrscan *h, const char *p, size_t n)
{
    h->line = HS_BODY;
    if (h->stage == 0 || h->stage == HS_BODY)
        return;
    if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
        h->line = h->field; /* a continuation goes with its field */
        return;
    }
    size_t name = n ? hdrscan_name_len(p, n) : 0;
    if (name == 0) {
        h->stage = HS_BODY; /* the blank line, or a line that is no header: the body */
        return;
    }
    h->stage = h->field = h->line = hdrscan_block(h, p, name);
}

void session_hdrscan_line_end(struct session_hdrscan *h, int64_t at)
{
    /* the blocks nest: the Received: block is part of the leading RFC lines, and they of
     * the header section */
    if (h->line == HS_RECEIVED)
        h->received_end = at;
    if (h->line == HS_RECEIVED || h->line == HS_RFC)
        h->rfc_end = at;
    if (h->line >= HS_RECEIVED && h->line <= HS_OTHER)
        h->header_end = at;
    h->line = HS_BODY;
}
