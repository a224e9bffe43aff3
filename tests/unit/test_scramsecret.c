#include "suites.h"
Suite *scramsecret_suite(void)
{
    return suite_create("scramsecret");
}
