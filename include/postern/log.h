/*
 * log.h - mainlog, rejectlog and paniclog in Exim's line format
 * ("YYYY-MM-DD HH:MM:SS [msgid ]text"), so exigrep and eximstats read them.
 *
 * The log files are process-wide shared state: log_configure() is called by the main
 * thread at startup and on reload; log_write() may be called from any thread. Each line
 * is written with one write() on an O_APPEND descriptor, so lines from different threads
 * never interleave. Lines for the rejectlog also go to the mainlog, and paniclog lines
 * also go to the mainlog, as in Exim. When no log is configured (unit tests, -bh), lines
 * go to stderr when log_to_stderr is set, or nowhere.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdbool.h>

#define LOG_MAIN 1u
#define LOG_REJECT 2u
#define LOG_PANIC 4u

/* path_template: Exim's log_file_path, "%s" replaced by main/reject/panic.
 * "syslog" is not supported. Returns false with err on failure (directory not writable). */
bool log_configure(const char *path_template, char *err, unsigned long errlen);
void log_set_stderr(bool on); /* also copy every line to stderr (for -bdf debugging, -bh) */
void log_close(void);

/* msgid may be NULL. The text is one line; embedded newlines are escaped as "\n". */
void log_write(unsigned which, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format the current time as Exim does in log lines ("2026-11-25 03:46:57"). buf >= 20. */
void log_timestamp(char *buf, unsigned long size);

#endif
