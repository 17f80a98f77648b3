/*
 * cmsbench: the OpenSSL side of scripts/bench/throughput.sh (issue 17).
 *
 *   cmsbench gen DIR COUNT SIGNER-CERT SIGNER-KEY [EXTRA-CERT]
 *       Writes COUNT distinct detached-signed (multipart/signed, RSA/SHA-256) iMIP REQUESTs of
 *       about 4 KB to DIR/NNNNNN.eml, signed in this process with CMS_sign. The message carries
 *       the signer certificate, plus EXTRA-CERT (the intermediate) when given.
 *   cmsbench verify ANCHOR-PEM EPOCH DIR
 *       The baseline: for every *.eml of DIR (listed once, sorted), in one process with one
 *       X509_STORE: SMIME_read_CMS + CMS_verify (chain to the certificates of ANCHOR-PEM at
 *       time EPOCH). Prints "ok N failed M".
 *   cmsbench time OUT COMMAND [ARG...]
 *       Runs COMMAND (standard output to /dev/null) and writes "WALL CPU" to OUT: wall-clock
 *       seconds (CLOCK_MONOTONIC) and user + system CPU seconds of the child (wait4), both to
 *       the microsecond. GNU time prints hundredths, a quantisation of 2-4% on the 0.3 s an
 *       audit of 3,000 messages takes. Exits with the command's status.
 *
 * Built at run time by throughput.sh: cc -O2 cmsbench.c -lcrypto. Exit 0 on success.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

static void die(const char *what) {
    fprintf(stderr, "cmsbench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static X509 *read_cert(const char *path) {
    BIO *in = BIO_new_file(path, "r");
    if (in == NULL) die(path);
    X509 *cert = PEM_read_bio_X509(in, NULL, NULL, NULL);
    BIO_free(in);
    if (cert == NULL) die(path);
    return cert;
}

/* Size of the signed entity: with the headers and one certificate the message is about 4 KB. */
#define CALENDAR_BYTES 1320

/* The text/calendar entity (CRLF line ends) of message INDEX. */
static int calendar_entity(char *buf, size_t size, int index, const char *stamp) {
    int n = snprintf(buf, size,
                     "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n"
                     "Content-Transfer-Encoding: 7bit\r\n"
                     "\r\n"
                     "BEGIN:VCALENDAR\r\n"
                     "PRODID:-//imipsec//throughput bench//EN\r\n"
                     "VERSION:2.0\r\n"
                     "METHOD:REQUEST\r\n"
                     "BEGIN:VEVENT\r\n"
                     "UID:bench-%06d@example.com\r\n"
                     "DTSTAMP:%s\r\n"
                     "DTSTART:20270110T090000Z\r\n"
                     "DTEND:20270110T100000Z\r\n"
                     "SEQUENCE:0\r\n"
                     "SUMMARY:Throughput benchmark meeting %d\r\n"
                     "LOCATION:Room %d\r\n"
                     "ORGANIZER;CN=Organizer:mailto:organizer@example.com\r\n",
                     index, stamp, index, index % 97);
    for (int a = 0; a < 4; a++) {
        n += snprintf(buf + n, size - n,
                      "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:attendee%d@example.com\r\n",
                      a);
    }
    /* A folded DESCRIPTION (75-octet lines) pads the calendar to the message size wanted. */
    n += snprintf(buf + n, size - n, "DESCRIPTION:Agenda for meeting %d.", index);
    int line = 36;
    const char *filler = "Review the quarter, plan the next one, agree on owners and dates. ";
    size_t filler_len = strlen(filler);
    size_t pos = 0;
    while (n < CALENDAR_BYTES) {
        if (line >= 74) {
            n += snprintf(buf + n, size - n, "\r\n ");
            line = 1;
        }
        buf[n++] = filler[pos++ % filler_len];
        line++;
    }
    n += snprintf(buf + n, size - n,
                  "\r\n"
                  "END:VEVENT\r\n"
                  "END:VCALENDAR\r\n");
    return n;
}

static int gen(const char *dir, int count, const char *cert_path, const char *key_path,
               const char *extra_path) {
    X509 *signer = read_cert(cert_path);
    BIO *key_in = BIO_new_file(key_path, "r");
    if (key_in == NULL) die(key_path);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(key_in, NULL, NULL, NULL);
    BIO_free(key_in);
    if (key == NULL) die(key_path);
    STACK_OF(X509) *extra = sk_X509_new_null();
    if (extra_path != NULL) sk_X509_push(extra, read_cert(extra_path));

    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32], date[64];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);

    static char entity[8192];
    char path[4096];
    for (int i = 0; i < count; i++) {
        int len = calendar_entity(entity, sizeof entity, i, stamp);
        BIO *data = BIO_new_mem_buf(entity, len);
        /* CMS_STREAM: SMIME_write_CMS signs while it copies the content out (as `openssl cms -sign`). */
        int flags = CMS_DETACHED | CMS_BINARY | CMS_CRLFEOL | CMS_STREAM;
        CMS_ContentInfo *cms = CMS_sign(signer, key, extra, data, flags);
        if (cms == NULL || ERR_peek_error() != 0) die("CMS_sign");
        snprintf(path, sizeof path, "%s/%06d.eml", dir, i);
        BIO *out = BIO_new_file(path, "wb");
        if (out == NULL) die(path);
        BIO_printf(out,
                   "From: Organizer <organizer@example.com>\r\n"
                   "To: attendee0@example.com\r\n"
                   "Subject: Throughput benchmark meeting %d\r\n"
                   "Date: %s\r\n"
                   "Message-ID: <bench-%06d@example.com>\r\n",
                   i, date, i);
        if (!SMIME_write_CMS(out, cms, data, flags)) die("SMIME_write_CMS");
        BIO_free(out);
        BIO_free(data);
        CMS_ContentInfo_free(cms);
    }
    return 0;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int verify(const char *anchor_path, long epoch, const char *dir) {
    X509_STORE *store = X509_STORE_new();
    if (X509_STORE_load_file(store, anchor_path) != 1) die(anchor_path);
    X509_VERIFY_PARAM *param = X509_STORE_get0_param(store);
    X509_VERIFY_PARAM_set_time(param, (time_t)epoch);

    DIR *d = opendir(dir);
    if (d == NULL) die(dir);
    size_t cap = 1024, len = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t l = strlen(entry->d_name);
        if (l < 5 || strcmp(entry->d_name + l - 4, ".eml") != 0) continue;
        if (len == cap) names = realloc(names, (cap *= 2) * sizeof *names);
        names[len++] = strdup(entry->d_name);
    }
    closedir(d);
    qsort(names, len, sizeof *names, cmp);

    long ok = 0, failed = 0;
    char path[4096];
    for (size_t i = 0; i < len; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        BIO *in = BIO_new_file(path, "rb");
        BIO *content = NULL;
        CMS_ContentInfo *cms = in ? SMIME_read_CMS(in, &content) : NULL;
        if (cms != NULL && CMS_verify(cms, NULL, store, content, NULL, 0) == 1)
            ok++;
        else
            failed++;
        ERR_clear_error();
        CMS_ContentInfo_free(cms);
        BIO_free(content);
        BIO_free(in);
        free(names[i]);
    }
    free(names);
    X509_STORE_free(store);
    printf("ok %ld failed %ld\n", ok, failed);
    return failed == 0 ? 0 : 1;
}

static int timed(const char *out, char **command) {
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execvp(command[0], command);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (wait4(child, &status, 0, &usage) != child)
        die("wait4");
    clock_gettime(CLOCK_MONOTONIC, &end);
    double wall = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    double cpu = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                 (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    FILE *file = fopen(out, "w");
    if (file == NULL)
        die("cannot write the times file");
    fprintf(file, "%.6f %.6f\n", wall, cpu);
    fclose(file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    if (argc >= 6 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atoi(argv[3]), argv[4], argv[5], argc > 6 ? argv[6] : NULL);
    if (argc == 5 && strcmp(argv[1], "verify") == 0)
        return verify(argv[2], atol(argv[3]), argv[4]);
    if (argc >= 4 && strcmp(argv[1], "time") == 0)
        return timed(argv[2], argv + 3);
    fprintf(stderr,
            "usage: cmsbench gen DIR COUNT SIGNER-CERT SIGNER-KEY [EXTRA-CERT]\n"
            "       cmsbench verify ANCHOR-PEM EPOCH DIR\n"
            "       cmsbench time OUT COMMAND [ARG...]\n");
    return 2;
}
