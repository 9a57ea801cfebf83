// Package filetype decides what an uploaded file is and what it may be
// called.
//
// What it is comes from the bytes only, never from the name or the
// client's declaration: DetectHead reads the first bytes (PDF, JPEG, PNG,
// or a ZIP), and an OFDChecker reads a whole ZIP as it streams past and
// accepts it as OFD only if it is a well-formed archive whose central
// directory agrees with its local headers and which holds OFD.xml (the
// rules are in zip.go).
//
// What it may be called: CleanName makes a client's name safe to store,
// show and save on Unix and Windows (no paths, control or look-alike
// characters, reserved characters, device names, trailing dots); Name then
// keeps the base name and gives it the extension of the detected type, so
// that "申请书.hta" holding a PDF is stored and served as "申请书.pdf". An
// upload is not refused for a name that can be repaired. docs/filenames.md
// explains the choice with examples.
package filetype
