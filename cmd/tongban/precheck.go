package main

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"strings"

	"tongban/gateway"
	"tongban/gateway/filetype"
)

// kindFile is one KIND=FILE argument.
type kindFile struct{ kind, path string }

func parseKindFiles(args []string) ([]kindFile, error) {
	var out []kindFile
	for _, a := range args {
		kind, path, ok := strings.Cut(a, "=")
		if !ok || kind == "" || path == "" {
			return nil, usageError("%q: files are given as KIND=FILE, e.g. consent_form=同意书.pdf", a)
		}
		out = append(out, kindFile{kind, path})
	}
	return out, nil
}

// checkFiles checks KIND=FILE arguments against a catalogue item before
// anything is uploaded and returns every problem found: kinds the item
// does not have or given twice, files too big or of a type the material
// does not take, and, when complete is set, required kinds not given.
func checkFiles(item *gateway.Item, args []string, complete bool) []string {
	kfs, _ := parseKindFiles(args) // already checked by the caller
	var probs []string
	seen := map[string]bool{}
	for _, kf := range kfs {
		if seen[kf.kind] {
			probs = append(probs, fmt.Sprintf("%s: given twice", kf.kind))
			continue
		}
		seen[kf.kind] = true
		mat, ok := item.Material(kf.kind)
		if !ok {
			probs = append(probs, fmt.Sprintf("%s: %s has no such material (it takes %s)", kf.kind, item.Code, kinds(item)))
			continue
		}
		probs = append(probs, checkFile(kf.kind, kf.path, mat)...)
	}
	if complete {
		for _, m := range item.Materials {
			if m.Required && !seen[m.Kind] {
				probs = append(probs, fmt.Sprintf("%s: required (%s %s) but not given", m.Kind, m.Name, m.NameEN))
			}
		}
	}
	return probs
}

func kinds(item *gateway.Item) string {
	var ks []string
	for _, m := range item.Materials {
		ks = append(ks, m.Kind)
	}
	return strings.Join(ks, ", ")
}

// checkFile checks one local file's size and type against a material.
func checkFile(kind, path string, mat *gateway.Material) []string {
	st, err := os.Stat(path)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", kind, err)}
	}
	if st.IsDir() {
		return []string{fmt.Sprintf("%s: %s is a directory", kind, path)}
	}
	var probs []string
	if st.Size() > mat.MaxBytes {
		probs = append(probs, fmt.Sprintf("%s: %s is %d bytes; at most %d (%s) allowed", kind, path, st.Size(), mat.MaxBytes, mib(mat.MaxBytes)))
	}
	typ, err := sniff(path, mat.MaxBytes)
	switch {
	case err != nil:
		probs = append(probs, fmt.Sprintf("%s: %s: %v; accepted: %s", kind, path, err, strings.Join(mat.Types, ", ")))
	case !mat.Accepts(typ):
		probs = append(probs, fmt.Sprintf("%s: %s is %s; accepted: %s", kind, path, typ, strings.Join(mat.Types, ", ")))
	}
	return probs
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// sniff decides a local file's content type as the gateway does, with
// the same package filetype: from its first 512 bytes, and for a ZIP by
// running the whole archive through the OFD checker (an archive is
// accepted only as OFD). Files over limit are judged by their head only;
// they are refused for their size anyway.
func sniff(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if n == 0 {
		return "", errors.New("the file is empty")
	}
	typ, err := filetype.DetectHead(head[:n])
	if err != nil || typ != filetype.ZIP {
		return typ, err
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() > limit {
		return filetype.OFD, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	ofd := filetype.NewOFDChecker()
	_, err = io.Copy(ofd, f)
	if cerr := ofd.Close(); cerr != nil {
		return "", cerr // says it is not an OFD document, and why
	}
	if err != nil {
		return "", err
	}
	return filetype.OFD, nil
}

// refusal is the error of a pre-upload check: every problem, one a line.
func refusal(probs []string) error {
	return fmt.Errorf("nothing uploaded; %d problem(s) to fix first:\n  %s", len(probs), strings.Join(probs, "\n  "))
}

// uploadBody streams a multipart body, a manifest part first if manifest
// is not nil, then each file as it is read from disk, with a progress bar.
func uploadBody(manifest []byte, files []submitFile, stderr io.Writer) body {
	return func() (io.Reader, string, error) {
		var total int64
		for _, f := range files {
			total += f.size
		}
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		bar := newProgress(stderr, "uploading", "B", total)
		go func() {
			err := writeSubmission(mw, manifest, files, bar)
			bar.Finish()
			pw.CloseWithError(err)
		}()
		return pr, mw.FormDataContentType(), nil
	}
}
