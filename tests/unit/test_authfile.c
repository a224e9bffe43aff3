#include "suites.h"
Suite *authfile_suite(void)
{
    return suite_create("authfile");
}
