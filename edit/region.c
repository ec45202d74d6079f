/* The context the model sees around a selection (ie_edit_context in
 * invedit.h). Pure arithmetic, shared by the CLI's --mask and the GIMP
 * plug-ins (whose test builds link this file beside a fake library). */
#include <invedit.h>

ie_rect ie_edit_context(ie_rect sel, int width, int height, int work) {
    ie_rect whole = {0, 0, width, height};
    if (work <= 0) work = 512;
    int L = width > height ? width : height, s = sel.width > sel.height ? sel.width : sel.height;
    if (L <= 2 * work || 4 * s >= L) return whole;
    int side = s + (sel.width + sel.height) / 2;
    if (side < work) side = work;
    int cx = sel.x + sel.width / 2, cy = sel.y + sel.height / 2;
    ie_rect r = {cx - side / 2, cy - side / 2, side, side};
    if (r.width > width) r.width = width;
    if (r.height > height) r.height = height;
    if (r.x + r.width > width) r.x = width - r.width;
    if (r.y + r.height > height) r.y = height - r.height;
    if (r.x < 0) r.x = 0;
    if (r.y < 0) r.y = 0;
    /* the selection must lie inside (a selection longer than the square's side cannot happen:
     * side >= s; one wider than the image is clamped with it) */
    return r;
}
