/* What a JSON node is, in words, for messages about files that hold the wrong
 * kind of value ("expected a string, found an array"): used by the safetensors
 * header and config.json readers. */
#ifndef INVEDIT_MODEL_JSON_KIND_H
#define INVEDIT_MODEL_JSON_KIND_H

#include <json-glib/json-glib.h>

static inline const char *sd_json_kind(JsonNode *n) {
    if (!n) return "nothing";
    switch (json_node_get_node_type(n)) {
        case JSON_NODE_OBJECT: return "an object";
        case JSON_NODE_ARRAY: return "an array";
        case JSON_NODE_NULL: return "null";
        case JSON_NODE_VALUE: break;
    }
    GType t = json_node_get_value_type(n);
    if (t == G_TYPE_INT64) return "an integer";
    if (t == G_TYPE_DOUBLE) return "a non-integer number";
    if (t == G_TYPE_BOOLEAN) return "a boolean";
    if (t == G_TYPE_STRING) return "a string";
    return "a value";
}

#endif
