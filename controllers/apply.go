package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// keptObject is an object that the cluster reconciler keeps in line with the config. It
// applies desired whenever the fields that FieldManager owns differ from it.
type keptObject[T any, PT interface {
	*T
	client.Object
}, A runtime.ApplyConfiguration] struct {
	// key names the object.
	key client.ObjectKey
	// desired is the object as the config describes it.
	desired A
	// extract returns the fields of the object that the field manager owns, as the
	// applyconfigurations package's Extract functions do.
	extract func(*T, string) (A, error)
}

// ensure applies k.desired when the object is missing or the fields that FieldManager
// owns differ from it. A user's edit of such a field takes it over, so it shows up as a
// difference and is reverted. Fields and list items that only others set stay, as
// server-side apply merges them, so a container that a user adds to the DaemonSet stays.
// When the merge is invalid, ensure replaces the object. It reports whether it wrote.
func (k keptObject[T, PT, A]) ensure(ctx context.Context, c client.Client) (bool, error) {
	var current PT = new(T)
	err := c.Get(ctx, k.key, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("get %T %s: %w", current, k.key, err)
	}
	if err == nil {
		owned, err := k.extract(current, FieldManager)
		if err != nil {
			return false, fmt.Errorf("read the fields of %T %s that %s owns: %w", current, k.key, FieldManager, err)
		}
		same, err := sameObject[T](owned, k.desired)
		if err != nil {
			return false, fmt.Errorf("compare %T %s with the config: %w", current, k.key, err)
		}
		if same {
			return false, nil
		}
	}
	err = c.Apply(ctx, k.desired, client.FieldOwner(FieldManager), client.ForceOwnership)
	if apierrors.IsInvalid(err) && current.GetUID() != "" {
		err = k.replace(ctx, c, current, err)
	}
	if err != nil {
		return false, fmt.Errorf("apply %T %s: %w", current, k.key, err)
	}
	return true, nil
}

// replace deletes current and creates it again from k.desired. It is the repair for an
// object whose merge with k.desired is invalid, such as a binding whose validationActions
// a user set to Warn, which may not stand beside the controller's Deny.
func (k keptObject[T, PT, A]) replace(ctx context.Context, c client.Client, current PT, applyErr error) error {
	ctrl.LoggerFrom(ctx).Info("Replacing an object that cannot take the config by apply",
		"object", describeObject(current), "error", applyErr.Error())
	uid := current.GetUID()
	if err := c.Delete(ctx, current, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete it to replace it, after the apply failed with %w: %w", applyErr, err)
	}
	return c.Apply(ctx, k.desired, client.FieldOwner(FieldManager), client.ForceOwnership)
}

// sameObject reports whether two apply configurations of a T describe the same object.
// It decodes both into a T, so that equal quantities written differently, such as
// 1Gi and 1024Mi, compare equal.
func sameObject[T any](a, b runtime.ApplyConfiguration) (bool, error) {
	var objA, objB T
	if err := roundTrip(a, &objA); err != nil {
		return false, err
	}
	if err := roundTrip(b, &objB); err != nil {
		return false, err
	}
	return equality.Semantic.DeepEqual(objA, objB), nil
}

func roundTrip(from, to any) error {
	data, err := json.Marshal(from)
	if err != nil {
		return fmt.Errorf("encode %T: %w", from, err)
	}
	if err := json.Unmarshal(data, to); err != nil {
		return fmt.Errorf("decode %T: %w", to, err)
	}
	return nil
}

// deleteIfPresent deletes obj when the client's cache still has it, so an object that is
// already gone costs no request. It reports whether it deleted.
func deleteIfPresent(ctx context.Context, c client.Client, obj client.Object) (bool, error) {
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if err := c.Delete(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
	}
	return true, nil
}
