/* Prints the library's parameter table plus the plug-in's own arguments, one
 * tab-separated line each, for the GIMP tests (which build their calls and
 * widget checks from it instead of repeating the parameter list):
 *   name  type  default  min  max  advanced
 * type: int, double, bool, string, method (default written as its name). */
#include <stdio.h>

#include "plugin/core.h"

int main(void) {
    static const char *const types[] = {"int", "double", "bool", "string", "method"};
    size_t n;
    const ie_param_desc *t = ie_edit_param_table(&n);
    printf("%s\tstring\t\t0\t0\t0\n", IVP_ARG_MODEL_PATH);
    for (size_t i = 0; i < n; i++) {
        const ie_param_desc *d = &t[i];
        if (d->type == IE_PARAM_STRING) printf("%s\t%s\t%s", d->name, types[d->type], ie_edit_param_default_string(d));
        else if (d->type == IE_PARAM_METHOD)
            printf("%s\t%s\t%s", d->name, types[d->type], ie_method_name((ie_method)ie_edit_param_default_number(d)));
        else printf("%s\t%s\t%.17g", d->name, types[d->type], ie_edit_param_default_number(d));
        printf("\t%.17g\t%.17g\t%d\n", d->min, d->max, d->advanced ? 1 : 0);
    }
    printf("%s\tstring\t%s\t0\t0\t0\n", IVP_ARG_OUTPUT, ivp_output_name(IVP_OUTPUT_NEW_LAYER));
    return 0;
}
