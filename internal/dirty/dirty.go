package dirty

import "errors"

// ErrUnsupported: this system cannot track written pages.
var ErrUnsupported = errors.New("written-page tracking is not available")
