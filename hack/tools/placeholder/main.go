// Command placeholder is the only file of the placeholder image. CRI needs an image to create a
// container, and Reaper runs host binaries instead of the image's files, so it only prints a line.
package main

import "fmt"

func main() {
	fmt.Println("reaper placeholder image: Reaper runs host binaries, so this image's files are not used")
}
