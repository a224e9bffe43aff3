/*
 * test_promtext.c - unit tests for src/promtext.c: label values escaped as
 * the exposition format requires and forced to valid UTF-8 (table-driven),
 * the HELP/TYPE lines, and the snprintf-like counting when the buffer is
 * short (nothing written past cap, the full length still reported).
 */
#include <stdio.h>
#include <string.h>

#include "promtext.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *in, *out;
} label_cases[] = {
    {"", ""},
    {"plain", "plain"},
    {"CN=db.example,O=Acme", "CN=db.example,O=Acme"},
    {"a\\b", "a\\\\b"},
    {"say \"hi\"", "say \\\"hi\\\""},
    {"two\nlines", "two\\nlines"},
    {"tab\there", "tab?here"},
    {"cr\rbell\a", "cr?bell?"},
    {"del\x7f", "del?"},
    {"caf\xc3\xa9", "caf\xc3\xa9"},           /* 2-byte UTF-8 kept */
    {"\xe2\x82\xac", "\xe2\x82\xac"},         /* 3-byte (euro sign) */
    {"\xf0\x9f\x94\x92", "\xf0\x9f\x94\x92"}, /* 4-byte (lock) */
    {"\xc3", "?"},                            /* truncated sequence */
    {"\xc3(", "?("},                          /* bad continuation */
    {"\xc0\xaf", "??"},                       /* overlong '/' */
    {"\xe0\x80\xaf", "???"},                  /* overlong, 3 bytes */
    {"\xed\xa0\x80", "???"},                  /* UTF-16 surrogate */
    {"\xf4\x90\x80\x80", "????"},             /* above U+10FFFF */
    {"\xff\xfe", "??"},                       /* never UTF-8 */
    {"\x80x", "?x"},                          /* lone continuation */
    {"ok\xe2\x82", "ok??"},                   /* cut at the end */
};

START_TEST(test_label_value)
{
    char buf[64];
    struct prom_out o = {.buf = buf, .cap = sizeof(buf), .len = 0};
    prom_label_value(&o, label_cases[_i].in);
    ck_assert_uint_lt(o.len, sizeof(buf));
    buf[o.len] = '\0';
    ck_assert_msg(strcmp(buf, label_cases[_i].out) == 0, "case %d: got \"%s\"", _i, buf);
}
END_TEST

START_TEST(test_family_and_numbers)
{
    char buf[256];
    struct prom_out o = {.buf = buf, .cap = sizeof(buf), .len = 0};
    prom_family(&o, "x_total", "counter", "Things, counted.");
    prom_putf(&o, "x_total{k=\"%s\"} %d\n", "v", 42);
    prom_puts(&o, "y 1\n");
    buf[o.len] = '\0';
    ck_assert_str_eq(buf, "# HELP x_total Things, counted.\n# TYPE x_total counter\n"
                          "x_total{k=\"v\"} 42\ny 1\n");
}
END_TEST

/* Short buffers: every byte that fits is written, nothing past cap, and
 * len is what the whole text needs, as snprintf's return value. */
START_TEST(test_counts_past_cap)
{
    const char *want = "# HELP a b.\n# TYPE a gauge\na{l=\"q\\\"\"} 7\n";
    size_t full = strlen(want);
    for (size_t cap = 0; cap <= full + 1; cap++) {
        char buf[64];
        memset(buf, '#', sizeof(buf));
        struct prom_out o = {.buf = buf, .cap = cap, .len = 0};
        prom_family(&o, "a", "gauge", "b.");
        prom_puts(&o, "a{l=\"");
        prom_label_value(&o, "q\"");
        prom_putf(&o, "\"} %d\n", 7);
        ck_assert_uint_eq(o.len, full);
        size_t wrote = cap < full ? cap : full;
        ck_assert(memcmp(buf, want, wrote) == 0);
        for (size_t i = wrote; i < sizeof(buf); i++)
            ck_assert_msg(buf[i] == '#', "cap %zu: byte %zu written", cap, i);
    }
}
END_TEST

/* prom_putf is for numbers and our names: longer output is cut at 255. */
START_TEST(test_putf_bound)
{
    static char buf[1024];
    char arg[400];
    memset(arg, 'n', sizeof(arg) - 1);
    arg[sizeof(arg) - 1] = '\0';
    struct prom_out o = {.buf = buf, .cap = sizeof(buf), .len = 0};
    prom_putf(&o, "%s", arg);
    ck_assert_uint_eq(o.len, 255);
}
END_TEST

Suite *promtext_suite(void)
{
    Suite *s = suite_create("promtext");
    TCase *t = tcase_create("promtext");
    tcase_add_loop_test(t, test_label_value, 0, NELEM(label_cases));
    tcase_add_test(t, test_family_and_numbers);
    tcase_add_test(t, test_counts_past_cap);
    tcase_add_test(t, test_putf_bound);
    suite_add_tcase(s, t);
    return s;
}
