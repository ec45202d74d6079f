/* Attention control through the UNet's attention hook (model/unet.h).
 *
 * Two controllers, both written with engine ops only (so they run on the
 * Vulkan and CPU backends alike, and tensors never leave the device):
 *
 * Prompt-to-Prompt for edit-friendly DDPM inversion (its p2pinv mode) and BDIA,
 * batch [uncond src, uncond tgt, cond src, cond tgt]; on the conditional rows
 * only (LOW_RESOURCE):
 *   cross-attention, steps < int(cross · (N + 1)): the target row's
 *     probabilities become A_src · M (AttentionReplace, 77x77 replacement
 *     mapper) or A_src[:, :, mapper] · α + A_tgt · (1 − α) (AttentionRefine);
 *   self-attention, steps < int(self · N), layers with ≤ 256 keys: the
 *     target row's probabilities become the source row's.
 *
 * InfEdit's unified attention control (docs/methods.md), batch
 * [s, t, m uncond, s, t, m cond]:
 *   self-attention, every layer, both halves: early phase t ← (Q_s, K_s, V_t),
 *     m ← (Q_s, K_s, V_s); late phase m ← (Q_t, K_s, V_s) (rows substituted
 *     before the fused attention: no probabilities needed);
 *   cross-attention, conditional rows: R_s = Refine(P_s, P_t),
 *     R_m = Refine(P_m, P_t); while the plan's cross window is open the target
 *     row's probabilities become R_s (demo) or R_m (PIE-Bench); when local
 *     blending is on, R_s and R_m summed over heads are accumulated over the
 *     map-resolution layers (down and up blocks, not mid) for edit/blend.h.
 *
 * Refine(P_b, P_t)[h, p, n] = α_n P_b[h, p, mapper[n]] + (1 − α_n) P_t[h, p, n]
 * is computed as P_b · M + P_t ⊙ (1 − α) with M[mapper[n], n] = α_n.
 */
#ifndef INVEDIT_CONTROL_H
#define INVEDIT_CONTROL_H

#include <stdbool.h>

#include "edit/align.h"
#include "edit/blend.h"
#include "inversion/denoiser.h"
#include "model/unet.h"

typedef struct ie_controller ie_controller;

/* P2P for EF-DDPM. replace_M (77x77, row = source position) for
 * AttentionReplace, or refine (mapper/alphas) for AttentionRefine. */
ie_controller *ie_controller_p2p(ie_backend *be, const float *replace_M, const ie_refine_map *refine, double cross,
                                 double self, int num_steps, char *err, size_t errlen);

/* InfEdit. mapper/alphas over target positions (align.h), map_h x map_w the
 * blend-map resolution (0 = no map accumulation). */
ie_controller *ie_controller_infedit(ie_backend *be, const int *mapper, const float *alphas, int map_h, int map_w,
                                     char *err, size_t errlen);

void ie_controller_free(ie_controller *c);

/* Glue: the UNet hook, and the step_begin the denoiser forwards. */
ie_status ie_controller_hook(void *user, unet_hook_stage stage, unet_attn_call *call);
ie_status ie_controller_step_begin(ie_controller *c, const ie_step_info *info);

/* For ie_local_blend.get_maps: the accumulated maps (downloaded). */
ie_status ie_controller_get_maps(void *user, ie_cross_maps *out);

const char *ie_controller_errmsg(const ie_controller *c);

#endif
