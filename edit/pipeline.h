/* Lower-level pipeline entry points (invedit.h has the public ones): latent
 * encode/decode and editing a latent directly, for the CLI's invert /
 * reconstruct / generate commands, the tests and the benchmark. */
#ifndef INVEDIT_PIPELINE_H
#define INVEDIT_PIPELINE_H

#include <invedit.h>

#include "vkcompute/ops.h"

ie_backend *ie_session_backend(ie_session *s);
int ie_session_latent_channels(const ie_session *s);
int ie_session_vae_factor(const ie_session *s);

/* image (working size: sides multiples of ie_session_size_multiple) ->
 * latent [C, H/f, W/f] in UNet space (x scaling_factor): the posterior mean,
 * or a sample drawn from seed. */
ie_status ie_session_encode(ie_session *s, const ie_image *img, bool sample, uint64_t seed, float *latent, char *err,
                            size_t errlen);
/* latent [C, h, w] -> a new RGB image of h·f x w·f. */
ie_status ie_session_decode(ie_session *s, const float *latent, int h, int w, ie_image *out, char *err, size_t errlen);

/* Runs the method on latent x0 [C, h, w]; out receives the edited latent.
 * unet_evals (may be NULL) receives the UNet image-evaluations used. */
ie_status ie_edit_latent(ie_session *s, const ie_edit_params *p, const float *x0, int h, int w, float *out,
                         ie_edit_progress_fn progress, void *user, int64_t *unet_evals, char *err, size_t errlen);

/* Text to image with BDIA-DDIM (gamma 0 = plain DDIM, eta 0) from noise
 * drawn from p->seed: p->target_prompt, p->steps, p->cfg_target, p->gamma,
 * p->negative_prompt. out [C, h, w]. */
ie_status ie_generate_latent(ie_session *s, const ie_edit_params *p, int h, int w, float *out,
                             ie_edit_progress_fn progress, void *user, char *err, size_t errlen);

/* The inversion alone, for `invedit invert`. *out (malloc'd) receives
 * n_latents latents [C, h, w]: EF-DDPM [x_N, z_N, ..., z_1] (the noisiest
 * sampled latent and every noise map), BDIA [z_{K-1}, z_{K-2}] (the pair
 * regeneration starts from, rounded to float). InfEdit has no inversion. */
ie_status ie_invert_latent(ie_session *s, const ie_edit_params *p, const float *x0, int h, int w, float **out,
                           int *n_latents, char *err, size_t errlen);

#endif
