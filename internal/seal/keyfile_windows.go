package seal

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// identitySDDL is the access list of a new identity file: full control to
// the current user and to Administrators only, not inherited from the
// folder (P). keyfile sets it at creation, so there is no moment when the
// folder's inherited rights apply.
func identitySDDL() (string, error) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("finding the current user: %w", err)
	}
	return fmt.Sprintf("D:P(A;;FA;;;%s)(A;;FA;;;BA)", user.User.Sid), nil
}
