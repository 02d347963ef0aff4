// Command printeuid prints its effective user ID as "Effective uid: N". Installed setuid root in
// the nonewprivs test image, it prints 0 unless no_new_privs kept the setuid bit from applying.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
