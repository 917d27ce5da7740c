/*
 * bounce.c - the failure report ("bounce") sent to the sender when addresses fail
 * permanently: a new message from the null sender "<>", with Exim's wording and a copy
 * of the original message (headers and the start of the body, up to BOUNCE_RETURN_LIMIT),
 * spooled synchronously and logged with an "<=" line that refers to the original
 * message (R=<id>), as Exim logs locally generated bounces.
 *
 * Called by the delivery thread that holds the original message's lock. No state.
 */
#include "deliver_internal.h"

#include "postern/log.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BOUNCE_RETURN_LIMIT (100 * 1024)

static void bounce_headers(struct delivery *d, const char *new_id, struct addr_item *const *failed,
                           int count, struct buf *out)
{
    const char *qualify =
        d->cfg->qualify_domain ? d->cfg->qualify_domain : d->cfg->primary_hostname;
    const char *host = d->cfg->primary_hostname ? d->cfg->primary_hostname : "localhost";
    char date[64];
    time_rfc2822(date, sizeof date, time(NULL));
    buf_printf(out, "Received: from postern by %s with local id %s\r\n\t; %s\r\n", host, new_id,
               date);
    buf_printf(out, "Auto-Submitted: auto-replied\r\n");
    buf_printf(out, "From: Mail Delivery System <Mailer-Daemon@%s>\r\n", qualify ? qualify : host);
    buf_printf(out, "To: %s\r\n", d->env->sender);
    buf_printf(out, "References: <E%s@%s>\r\n", d->id, host);
    buf_printf(out, "Subject: Mail delivery failed: returning message to sender\r\n");
    buf_printf(out, "Message-Id: <E%s@%s>\r\n", new_id, host);
    buf_printf(out, "X-Failed-Recipients: ");
    for (int i = 0; i < count; i++)
        buf_printf(out, "%s%s", i ? ",\r\n  " : "", failed[i]->address);
    buf_printf(out, "\r\nDate: %s\r\n\r\n", date);
}

static void bounce_text(struct delivery *d, struct addr_item *const *failed, int count,
                        struct buf *out)
{
    buf_append_str(out, "This message was created automatically by mail delivery software.\r\n"
                        "\r\n"
                        "A message that you sent could not be delivered to one or more of its\r\n"
                        "recipients. This is a permanent error. The following address(es) "
                        "failed:\r\n\r\n");
    for (int i = 0; i < count; i++) {
        const struct addr_item *a = failed[i];
        buf_printf(out, "  %s\r\n", a->address);
        if (a->message && *a->message)
            buf_printf(out, "    %s\r\n", a->message);
    }
    buf_append_str(out, "\r\n------ This is a copy of the message, including all the headers. "
                        "------\r\n\r\n");
}

/* Append the original message, cut at a line end after BOUNCE_RETURN_LIMIT bytes. */
static void bounce_copy_original(struct delivery *d, struct buf *out)
{
    struct spool_message_reader msg;
    if (!spool_message_open(&msg, d->env)) {
        buf_append_str(out, "[the original message could not be read]\r\n");
        return;
    }
    size_t start = out->len;
    char chunk[16384];
    ssize_t n;
    while (out->len - start < BOUNCE_RETURN_LIMIT &&
           (n = spool_message_read(&msg, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        buf_append(out, chunk, (size_t)n);
    }
    bool more = spool_message_read(&msg, chunk, 1) > 0;
    spool_message_close(&msg);
    if (out->len - start > BOUNCE_RETURN_LIMIT || more) {
        size_t cut =
            start + BOUNCE_RETURN_LIMIT < out->len ? start + BOUNCE_RETURN_LIMIT : out->len;
        while (cut > start && out->data[cut - 1] != '\n')
            cut--;
        out->len = cut;
        out->data[cut] = 0;
        buf_printf(out,
                   "\r\n------ The body of the message is %lld characters long; only the "
                   "first\r\n------ %d or so are included here.\r\n",
                   (long long)d->env->size, BOUNCE_RETURN_LIMIT);
    } else if (out->len > start && out->data[out->len - 1] != '\n') {
        buf_append_str(out, "\r\n");
    }
}

static bool bounce_spool(struct delivery *d, const char *new_id, const struct buf *text, char *err,
                         size_t errlen)
{
    struct spool_writer *w = spool_message_begin(new_id, err, errlen);
    if (!w)
        return false;
    if (!spool_data_write(w, text->data, text->len, err, errlen)) {
        spool_message_abort(w);
        return false;
    }
    struct spool_recipient rcpt = {d->env->sender, false};
    struct spool_envelope env;
    memset(&env, 0, sizeof env);
    memcpy(env.id, new_id, SPOOL_ID_LEN + 1);
    env.sender = "";
    env.received_time = (int64_t)time(NULL);
    env.size = (int64_t)text->len;
    env.host_address = "";
    env.host_name = "";
    env.helo_name = "";
    env.protocol = "local";
    env.proxy_address = "";
    env.interface_address = "";
    env.recipient_count = 1;
    env.recipients = &rcpt;
    return spool_commit_wait(w, &env, err, errlen);
}

bool deliver_bounce(struct delivery *d, struct addr_item *const *failed, int count,
                    const char *new_id)
{
    char err[256] = "";
    struct buf text;
    buf_init(&text);
    bounce_headers(d, new_id, failed, count, &text);
    bounce_text(d, failed, count, &text);
    bounce_copy_original(d, &text);
    bool ok = bounce_spool(d, new_id, &text, err, sizeof err);
    if (ok) {
        log_write(LOG_MAIN, new_id, "<= <> R=%s U=postern P=local S=%zu", d->id, text.len);
    } else {
        log_write(LOG_PANIC, d->id, "failed to spool a bounce message: %s", err);
    }
    buf_free(&text);
    return ok;
}
