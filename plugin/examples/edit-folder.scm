; edit-folder.scm - edit every PNG and JPEG in a folder with invedit, without a GUI (GIMP 3, Script-Fu v3).
;
; Defines (invedit-edit-folder IN-DIR OUT-DIR MODEL SOURCE-PROMPT TARGET-PROMPT): each image in
; IN-DIR (*.png, *.jpg, *.jpeg) is loaded, its selected layers are edited in place (whole layer,
; InfEdit, the plug-in's defaults for everything else), and it is exported under the same name to
; OUT-DIR, which must exist. Prints one line per file; a file that fails is reported and skipped.
;
;   gimp-console-3.0 -i --quit --batch-interpreter=plug-in-script-fu-eval \
;     -b '(begin (load "/path/to/edit-folder.scm")
;                (invedit-edit-folder "/photos" "/photos/edited" "/models/sd15"
;                                     "a photo of a cat on a sofa" "a photo of a dog on a sofa"))'
;
; Any other argument of plug-in-invedit can be added to the call below as #:name value, e.g.
; #:method "ef-ddpm" #:steps 50 #:strength 0.6 #:seed 42 #:output "new-layer"
; (the Procedure Browser, Help > Procedure Browser, lists them all with their ranges).

(script-fu-use-v3)

(define (invedit-basename path)            ; "/a/b/c.png" -> "c.png"
  (let loop ((i (- (string-length path) 1)))
    (cond ((< i 0) path)
          ((char=? (string-ref path i) #\/) (substring path (+ i 1) (string-length path)))
          (else (loop (- i 1))))))

(define (invedit-images-in dir)
  (apply append
         (map (lambda (pattern)
                (let ((found (file-glob (string-append dir "/" pattern) 0)))
                  (if (vector? found) (vector->list found) found)))
              '("*.png" "*.PNG" "*.jpg" "*.JPG" "*.jpeg" "*.JPEG"))))

; Returns #t when the file was edited and saved. The image is deleted whatever happens: a failed
; call must not leave it behind (GIMP would report "a stray image ... left around by a plug-in").
(define (invedit-edit-one in-file out-file model source target)
  (let* ((img (gimp-file-load RUN-NONINTERACTIVE in-file))
         (layers (gimp-image-get-selected-layers img))
         (ok (catch #f
               (plug-in-invedit #:run-mode RUN-NONINTERACTIVE #:image img #:drawables layers
                                #:model-path model #:source-prompt source #:target-prompt target
                                #:output "in-place")
               (gimp-file-save RUN-NONINTERACTIVE img out-file -1)
               #t)))
    (gimp-image-delete img)
    ok))

(define (invedit-edit-folder in-dir out-dir model source target)
  (for-each
    (lambda (in-file)
      (let ((out-file (string-append out-dir "/" (invedit-basename in-file))))
        (if (catch #f (invedit-edit-one in-file out-file model source target) #t)
            (gimp-message (string-append "invedit: " in-file " -> " out-file))
            (gimp-message (string-append "invedit: FAILED " in-file)))))
    (invedit-images-in in-dir)))
