/*
 * fuzz_smtp_session.c - libFuzzer target for whole SMTP dialogues through the socket-free
 * session state machine (src/smtp/session*.c): commands, pipelining, DATA bodies with
 * bare CR/LF/NUL, PRDR, overlong lines, timeouts, shutdown notices and lost connections.
 *
 * The configuration's ACLs read every session variable and `set`, `logwrite`,
 * `add_header` and `message` in every stage (connect, helo, mail, rcpt, predata, data,
 * data_prdr, quit, notquit, vrfy), with verbs chosen by what the client sends, so the
 * fuzzer reaches every path where a variable or a stored pointer outlives its arena.
 *
 * Input format: byte 0 chooses the connection (bit 0 local -bs input, bit 1 -bh test
 * mode, bit 2 failed PROXY negotiation, bit 3 proxied, bit 4 input already pending at
 * the banner, bit 5 the connect ACL delays the banner). The rest is the client's bytes, cut into segments at each 0xFF; the byte
 * after a 0xFF is an event: 'T' command/data timeout, 'S' shutdown notice, 'L'
 * connection lost, 'P' toggle "more input pending" (for the synchronization checks),
 * anything else just a segment boundary. A HELO name, sender or recipient local part
 * "slow" makes that ACL delay its reply; the harness ends the delay at once. Each segment is appended to the session's
 * input and processed, as one read() would be.
 *
 * Commits go to the real spool committer thread (spool in fuzz_session.<pid> on /dev/shm
 * when there is one, so fsync costs nothing, else /tmp); this file waits for the hand-back
 * the way a worker would and removes every committed message. Checks beyond the
 * sanitizers: outside a message the session's memory stays under a fixed bound, every
 * reply is well framed, and a committed message reads back (through the spool's reader)
 * as its -D with each group of added header lines at its offset, at a line start.
 *
 * Threads: libFuzzer's thread plus the spool committer.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "postern/config.h"
#include "postern/session.h"
#include "postern/spool.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Outside a message a session holds one command's work, the variables (each at most
 * SESSION_VAR_MAX) and its buffers: far below this. */
#define FUZZ_IDLE_MEMORY_MAX (2 * 1024 * 1024)

#define ALLVARS                                                                                    \
    "$sender_host_address $sender_host_port $sender_host_name $sender_helo_name "                  \
    "$sender_rcvhost $received_ip_address $received_port $interface_address $interface_port "      \
    "$proxy_session $proxy_host_address $proxy_host_port $proxy_target_address "                   \
    "$proxy_target_port $smtp_command $smtp_notquit_reason $authenticated_id "                     \
    "$sender_address $sender_address_local_part $sender_address_domain $local_part $domain "       \
    "$recipients_count $rcpt_count $received_for $recipients $message_exim_id $message_id "        \
    "$message_size $prdr_requested $received_protocol $acl_c0 $acl_m0 $acl_c_x $acl_m_x"

/* clang-format off */
/* Every stage: read and set every variable, log them. */
#define STAGE_COMMON(stage)                                                   \
    "  warn  set acl_c0 = ${length_300:" stage " $acl_c0 $smtp_command}\n"    \
    "        set acl_m0 = ${length_300:" stage " $acl_m0 $local_part}\n"      \
    "        set acl_c_x = ${length_2000:" ALLVARS "}\n"                      \
    "        set acl_m_x = ${length_2000:" ALLVARS "}\n"                      \
    "        logwrite = " stage " " ALLVARS "\n"

#define MESSAGE_STAGE(stage)                                                  \
    STAGE_COMMON(stage)                                                       \
    "        add_header = X-" stage ": $acl_m0 $smtp_command\n"               \
    "        add_header = :at_start:X-" stage "-b: $local_part\\n\\tcont\n"      \
    "        add_header = :after_received:X-" stage "-c: $sender_address\n"  \
    "        add_header = :AT_START_RFC: X-" stage "-d: $recipients_count\n"  \
    "        add_header = :at_end:X-" stage "-e: $message_size\\n:x:X-f: 1\n"

/* "delay =" when the client names itself "slow" (HELO name, sender or recipient local
 * part): the harness ends each delay at once, the way the delay thread would later. */
#define SLOW_STAGE(what)                                                      \
    "  warn  condition = ${if eq{" what "}{slow}}\n"                          \
    "        delay = 2s\n"

static const char *fuzz_config =
    "primary_hostname = fuzz.example\n"
    "prdr_enable = true\n"
    "message_size_limit = 16K\n"
    "recipients_max = 6\n"
    "smtp_max_unknown_commands = 8\n"
    "smtp_max_line_length = 512\n"
    "domainlist local_domains = localhost : fuzz.example\n"
    "acl_smtp_connect = s_connect\n"
    "acl_smtp_helo = s_helo\n"
    "acl_smtp_mail = s_mail\n"
    "acl_smtp_rcpt = s_rcpt\n"
    "acl_smtp_predata = s_predata\n"
    "acl_smtp_data = s_data\n"
    "acl_smtp_data_prdr = s_prdr\n"
    "acl_smtp_quit = s_quit\n"
    "acl_smtp_notquit = s_notquit\n"
    "acl_smtp_vrfy = s_vrfy\n"
    "begin acl\n"
    "s_connect:\n"
    STAGE_COMMON("connect")
    "  warn  condition = ${if eq{$sender_host_port}{4243}}\n"
    "        delay = 1s\n"
    "  deny  condition = ${if eq{$sender_host_port}{9}}\n"
    "        message = refused $acl_c0\n"
    "  accept\n"
    "s_helo:\n"
    STAGE_COMMON("helo")
    SLOW_STAGE("$sender_helo_name")
    "  deny  condition = ${if eq{$sender_helo_name}{deny}}\n"
    "        message = 550 helo $sender_helo_name $acl_m0\n"
    "  drop  condition = ${if eq{$sender_helo_name}{drop}}\n"
    "  defer condition = ${if eq{$sender_helo_name}{defer}}\n"
    "        message = later $acl_c0\n"
    "  accept\n"
    "s_mail:\n"
    MESSAGE_STAGE("mail")
    SLOW_STAGE("$sender_address_local_part")
    "  deny  condition = ${if eq{$sender_address_local_part}{deny}}\n"
    "        message = sender $sender_address $acl_m0\n"
    "  drop  condition = ${if eq{$sender_address_local_part}{drop}}\n"
    "  accept\n"
    "s_rcpt:\n"
    MESSAGE_STAGE("rcpt")
    SLOW_STAGE("$local_part")
    "  deny    local_parts = deny\n"
    "          message = no $local_part@$domain $acl_m0\n"
    "  defer   local_parts = defer\n"
    "  drop    local_parts = drop\n"
    "  discard local_parts = discard\n"
    "  accept  verify = recipient\n"
    "  accept  domains = +local_domains\n"
    "  deny    message = relay $domain\n"
    "s_predata:\n"
    MESSAGE_STAGE("predata")
    "  deny  condition = ${if eq{$sender_address_local_part}{nodata}}\n"
    "        message = predata $recipients $acl_m0\n"
    "  accept\n"
    "s_data:\n"
    MESSAGE_STAGE("data")
    SLOW_STAGE("$sender_address_local_part")
    "  deny    condition = ${if >{$message_size}{8000}}\n"
    "          message = big $message_size $acl_m0\n"
    "  discard condition = ${if eq{$sender_address_local_part}{discard}}\n"
    "  defer   condition = ${if eq{$sender_address_local_part}{defer}}\n"
    "  accept\n"
    "s_prdr:\n"
    MESSAGE_STAGE("prdr")
    "  deny    local_parts = prdrdeny\n"
    "          message = prdr $local_part $acl_m0\n"
    "  defer   local_parts = prdrdefer\n"
    "  accept\n"
    "s_quit:\n"
    STAGE_COMMON("quit")
    "  warn  message = quit $acl_m0\n"
    "  accept\n"
    "s_notquit:\n"
    STAGE_COMMON("notquit")
    "  accept\n"
    "s_vrfy:\n"
    STAGE_COMMON("vrfy")
    "  warn    set acl_c1 = $acl_c1$smtp_command$smtp_command\n"
    "  accept  local_parts = ok\n"
    "  deny    message = vrfy $local_part $acl_c1\n"
    "begin routers\n"
    "bh:\n"
    "  driver = redirect\n"
    "  local_parts = ok : user\n"
    "  data = :blackhole:\n";
/* clang-format on */

struct fuzz_harness {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool committed;
    bool pending;
};

static struct fuzz_harness harness = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
                                      false};
static struct config *cfg;
static char spool_root[128];

static bool fuzz_input_pending(struct session *s)
{
    return harness.pending;
}

static void fuzz_commit_finished(struct session *s)
{
    pthread_mutex_lock(&harness.lock);
    harness.committed = true;
    pthread_cond_signal(&harness.cond);
    pthread_mutex_unlock(&harness.lock);
}

static void fuzz_message_accepted(struct session *s, const char *id)
{
}

static const struct session_ops fuzz_ops = {fuzz_input_pending, fuzz_commit_finished,
                                            fuzz_message_accepted};

static void fuzz_cleanup(void)
{
    spool_shutdown();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", spool_root);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_smtp_session: could not remove %s\n", spool_root);
}

/* libFuzzer ends a campaign with _Exit (no atexit): remove the spools that runs of
 * processes no longer alive left behind. */
static void fuzz_remove_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "fuzz_session.", 13) != 0)
            continue;
        long pid = strtol(e->d_name + 13, &end, 10);
        if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/%s'", base, e->d_name);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz_smtp_session: could not remove %s/%s\n", base, e->d_name);
    }
    closedir(d);
}

static void fuzz_init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    fuzz_remove_stale(base);
    snprintf(spool_root, sizeof spool_root, "%s/fuzz_session.%ld", base, (long)getpid());
    CHECK(mkdir(spool_root, 0700) == 0);
    char path[192], err[1024];
    snprintf(path, sizeof path, "%s/spool", spool_root);
    if (!spool_init(path, 16, err, sizeof err)) {
        fprintf(stderr, "spool_init: %s\n", err);
        abort();
    }
    cfg = config_load_text(fuzz_config, "<fuzz>", NULL, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "fuzz config: %s\n", err);
        abort();
    }
    atexit(fuzz_cleanup);
}

/* The message as delivered (read `step` bytes at a time) is -D with each group of added
 * header lines at its offset; the offsets are in order, inside -D and at line starts. */
static void fuzz_check_delivered(const char *id, size_t step)
{
    struct arena arena;
    arena_init(&arena, 4096);
    struct spool_envelope env;
    char err[256];
    CHECK(spool_read_envelope(&arena, id, &env, err, sizeof err));
    int fd = spool_open_data(id);
    CHECK(fd >= 0);
    static char data[64 * 1024], want[192 * 1024], got[192 * 1024];
    ssize_t dlen = read(fd, data, sizeof data);
    close(fd);
    CHECK(dlen >= 0 && dlen == env.size);
    size_t wlen = 0, from = 0;
    for (int i = 0; i <= env.added_header_groups; i++) {
        size_t at = i < env.added_header_groups ? (size_t)env.added_headers[i].at : (size_t)dlen;
        const char *text = i < env.added_header_groups ? env.added_headers[i].text : "";
        CHECK(at >= from && at <= (size_t)dlen && (at == 0 || data[at - 1] == '\n'));
        CHECK(wlen + (at - from) + strlen(text) <= sizeof want);
        memcpy(want + wlen, data + from, at - from);
        wlen += at - from;
        memcpy(want + wlen, text, strlen(text));
        wlen += strlen(text);
        from = at;
    }
    struct spool_message_reader r;
    CHECK(spool_message_open(&r, &env));
    size_t glen = 0;
    ssize_t n;
    while ((n = spool_message_read(&r, got + glen, step)) > 0) {
        glen += (size_t)n;
        CHECK(glen + step <= sizeof got);
    }
    spool_message_close(&r);
    CHECK(n == 0 && glen == wlen && memcmp(got, want, wlen) == 0);
    arena_reset(&arena);
}

/* After a commit wait: hand the message over, wait for the committer, resume; the
 * committed message is removed again so the spool does not grow. */
static enum session_action fuzz_commit(struct session *s)
{
    if (!session_commit_start(s))
        return session_process(s);
    pthread_mutex_lock(&harness.lock);
    while (!harness.committed)
        pthread_cond_wait(&harness.cond, &harness.lock);
    harness.committed = false;
    pthread_mutex_unlock(&harness.lock);
    char id[SPOOL_ID_LEN + 1];
    memcpy(id, s->message_id, sizeof id);
    bool ok = atomic_load(&s->commit_state) == 2; /* done ok: the message is in the spool */
    size_t step = 1 + (size_t)(s->message_size % 7);
    enum session_action a = session_commit_resume(s);
    if (ok && spool_id_valid(id))
        fuzz_check_delivered(id, step);
    if (spool_id_valid(id))
        spool_remove(id);
    return a;
}

static void fuzz_check_idle_memory(const struct session *s)
{
    if (s->mail_given || s->state != SESSION_CMD)
        return;
    CHECK(session_memory(s) - s->in.cap - s->out.cap < FUZZ_IDLE_MEMORY_MAX);
}

/* Every reply line is "ddd " or "ddd-" text CRLF (or a -bh trace line), with no bare CR or
 * LF inside: nothing a client sends can break the reply framing. */
static void fuzz_check_replies(const struct session *s)
{
    const char *p = s->out.data, *end = s->out.data + s->out.len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        CHECK(lf && lf > p && lf[-1] == '\r');
        size_t n = (size_t)(lf - p) - 1;
        bool trace = s->test_mode && n >= 4 && memcmp(p, ">>> ", 4) == 0;
        CHECK(trace || (n >= 4 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
                        p[2] >= '0' && p[2] <= '9' && (p[3] == ' ' || p[3] == '-')));
        CHECK(!memchr(p, '\r', n));
        p = lf + 1;
    }
}

/* Carry the session through commits and ACL delays, as a worker and the delay thread
 * would (a delay ends at once here), until it waits for input or closes. */
static enum session_action fuzz_settle(struct session *s, enum session_action a)
{
    for (;;) {
        if (s->delay_until_ms) {
            CHECK(s->delay_hold <= s->out.len);
            a = session_delay_done(s, a);
            if (a == SESSION_CONTINUE)
                a = session_process(s);
        } else if (a == SESSION_WAIT_COMMIT) {
            a = fuzz_commit(s);
        } else {
            CHECK(a != SESSION_WAIT_DELAY);
            return a;
        }
    }
}

/* One segment as one read(): returns false once the session is closed. */
static bool fuzz_segment(struct session *s, const uint8_t *p, size_t n)
{
    buf_append(&s->in, p, n);
    enum session_action a = fuzz_settle(s, session_process(s));
    fuzz_check_replies(s);
    buf_clear(&s->out);
    fuzz_check_idle_memory(s);
    return a != SESSION_CLOSE;
}

/* An event after 0xFF: returns false once the session is closed. */
static bool fuzz_event(struct session *s, uint8_t ev)
{
    switch (ev) {
    case 'T':
        session_timeout(s);
        return false;
    case 'S':
        session_shutdown_notice(s);
        return false;
    case 'L':
        session_lost(s, "fuzz");
        return false;
    case 'P':
        harness.pending = !harness.pending;
        return true;
    default:
        return true;
    }
}

static struct session *fuzz_session(uint8_t flags)
{
    bool local = flags & 1;
    struct session *s =
        session_new(cfg, &fuzz_ops, local ? NULL : "192.0.2.7", local ? 0 : 4242, "127.0.0.1", 25);
    s->test_mode = flags & 2;
    if (flags & 32)
        s->client_port = 4243; /* the connect ACL delays it */
    if (flags & 4)
        session_set_proxy(s, true, false, false, NULL, 0, NULL, 0, "fuzz timeout");
    else if (flags & 8)
        session_set_proxy(s, true, true, false, "203.0.113.5", 9, "198.51.100.2", 25, NULL);
    harness.pending = flags & 16;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        fuzz_init();
        ready = true;
    }
    if (size == 0 || size > 65536)
        return 0;
    struct session *s = fuzz_session(data[0]);
    bool open = fuzz_settle(s, session_start(s)) != SESSION_CLOSE;
    buf_clear(&s->out);
    harness.pending = false;
    size_t pos = 1;
    while (open && pos < size) {
        const uint8_t *mark = memchr(data + pos, 0xFF, size - pos);
        size_t end = mark ? (size_t)(mark - data) : size;
        if (end > pos)
            open = fuzz_segment(s, data + pos, end - pos);
        pos = end;
        if (open && mark && pos + 1 < size)
            open = fuzz_event(s, data[pos + 1]);
        pos += mark ? 2 : 0;
    }
    if (open)
        session_lost(s, "end of fuzz input");
    session_free(s);
    return 0;
}
