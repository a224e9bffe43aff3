#include "suites.h"
Suite *scram_errors_suite(void) { return suite_create("scram_errors"); }
Suite *authfile_suite(void) { return suite_create("authfile"); }
Suite *scramsecret_suite(void) { return suite_create("scramsecret"); }
